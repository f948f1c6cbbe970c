"""Named plug-ins: proposers and executors are looked up by name, not hard-coded.

rsi's own are registered here by import path (imported only when used). Another package adds its
own either in code::

    import rsi
    rsi.proposers.register("my-llm", MyProposer)        # a class or any factory

or, without any code running first, through an entry point in its ``pyproject.toml``::

    [project.entry-points."rsi.proposers"]
    my-llm = "my_package.proposer:MyProposer"

Then ``[run] proposers = ["mutate", "my-llm"]`` in problem.toml (or ``executor = "..."``) uses it.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RsiError

if TYPE_CHECKING:
    from .proposers.base import Proposer


class Registry:
    """Factories by name for one kind of plug-in; entry points of ``group`` are loaded on first use."""

    def __init__(self, kind: str, group: str, builtins: dict[str, str]):
        self.kind = kind
        self.group = group
        self._paths = dict(builtins)  # name -> "module:attribute", imported on first use
        self._factories: dict[str, Callable[..., Any]] = {}
        self._scanned = False
        self._lock = threading.RLock()  # first uses from several threads import a plug-in once

    def register(self, name: str, factory: Callable[..., Any], *, replace: bool = False) -> None:
        """Make ``factory`` available as ``name``; an existing name needs ``replace=True``."""
        with self._lock:
            self._register(name, factory, replace)

    def _register(self, name: str, factory: Callable[..., Any], replace: bool) -> None:
        if not name or not isinstance(name, str):
            raise RsiError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        if not callable(factory):
            raise RsiError(f"the {self.kind} {name!r} must be a class or a callable factory, got {factory!r}")
        if not replace and (name in self._factories or name in self._paths):
            raise RsiError(f"a {self.kind} named {name!r} is already registered; pass replace=True to override it")
        self._paths.pop(name, None)
        self._factories[name] = factory

    def names(self) -> list[str]:
        with self._lock:
            self._scan()
            return sorted(set(self._paths) | set(self._factories))

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; an error listing the known names if there is none."""
        with self._lock:
            return self._get(name)

    def _get(self, name: str) -> Callable[..., Any]:
        self._scan()
        if name in self._factories:
            return self._factories[name]
        if name not in self._paths:
            known = ", ".join(sorted(set(self._paths) | set(self._factories)))
            raise RsiError(f"no {self.kind} named {name!r}; known: {known}. Register one with "
                           f"rsi.{self.kind}s.register(name, factory) or an entry point in group {self.group!r}")
        module, _, attribute = self._paths[name].partition(":")
        try:
            factory = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise RsiError(f"the {self.kind} {name!r} ({self._paths[name]}) cannot be loaded: {exc}") from None
        self._factories[name] = factory
        del self._paths[name]
        return factory

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        for point in entry_points(group=self.group):
            if point.name not in self._factories and point.name not in self._paths:
                self._paths[point.name] = point.value


proposers = Registry("proposer", "rsi.proposers", {
    "mutate": "rsi.proposers.mutate:MutateProposer",
    "llm": "rsi.proposers.llm:LLMProposer",  # needs the llm extra: pip install 'rsi[llm]'
    "grammar": "rsi.meta.grammar:GrammarProposer",  # SPEC edits of a composed improver (self-improvement)
    "tune": "rsi.proposers.tune:TuneProposer",  # CMA-ES over a program's constants: a multi-evaluation move
    "nudge": "rsi.proposers.nudge:NudgeProposer",  # one small move of one named setting (NAME = ... at module level)
    "remember": "rsi.proposers.remember:RememberProposer",  # a child improver carrying a memory (MEMORY = ...)
})
# Proposers every search has, so that any improver may use them (``Step(proposer="tune")``); they are
# offered among ``ctx.operators`` (the seed improver's bandit arms) only when ``[run] proposers`` lists them.
ALWAYS_AVAILABLE = ("tune",)


def make_proposer(name: str, config: dict[str, Any], problem_dir: Path | None = None) -> Proposer:
    """The registered proposer ``name``, built with its ``[proposer.NAME]`` settings (and the
    problem folder, for a factory with a ``problem_dir`` parameter: files its settings name)."""
    factory = proposers.get(name)
    try:
        wants_dir = "problem_dir" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a callable without a signature
        wants_dir = False
    try:
        return factory(**config, **({"problem_dir": problem_dir} if wants_dir and problem_dir else {}))
    except TypeError as exc:
        raise RsiError(f"[proposer.{name}] {exc}: check the keys against the proposer's documentation") from None


executors = Registry("executor", "rsi.executors", {
    "local": "rsi.executors:local_executor",
    "fork": "rsi.executors:fork_executor",
    "ray": "rsi.executors:ray_executor",  # needs the ray extra: pip install 'rsi[ray]'
})
