"""The improver contract: the search policy as a plain Python module.

An improver module defines
    next_step(ctx) -> Step                         required: which parent, inspirations, proposer,
                                                   operator, island and how many children
    start(ctx) -> None                             optional: initialise ctx.state
    observe(ctx, step, outcome) -> None            optional: learn from each finished child
    DEFAULTS = {...}                               optional: its settings and their defaults; the
                                                   [improver] table of problem.toml may set these
                                                   keys only (any other key is an error)
The engine owns evaluation, storage, budgets and isolation; the improver only decides. What it is
handed is read-only: ``ctx`` is a frozen snapshot made for each call (the archive a copy, the
population a tuple, the counts plain numbers), so an improver cannot stretch its budget or edit the
archive, and an attempt to assign to ``ctx`` raises. Its own state is ``ctx.state``, a JSON-able
dict persisted with every commit (so a resumed run continues it), and its only randomness is
``ctx.rng``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from ..archive import Archive
from ..errors import RsiError
from ..status import Status

SEED_IMPROVER = Path(__file__).with_name("seed.py")
MAX_CHILDREN = 64  # children one step may ask for


@dataclass(frozen=True)
class Step:
    """An improver's decision: make ``children`` children of ``parent`` (with ``inspirations``)
    with ``proposer`` / ``operator`` (None: the proposer picks), counted on ``island``;
    ``options`` go to the proposer as they are (for a model: prompt template, instructions,
    temperature, edit format; see the proposer's documentation)."""

    parent: int
    inspirations: list[int] = field(default_factory=list)
    island: int = 0
    proposer: str = "mutate"
    operator: str | None = None
    children: int = 1
    options: dict[str, Any] = field(default_factory=dict)  # handed to the proposer (e.g. a model's prompt)


@dataclass(frozen=True)
class Outcome:
    """What became of one child, as the improver learns it in ``observe``."""

    candidate_id: int
    status: Status
    score: float | None
    parent_score: float | None
    best_before: float | None  # best valid score before this child
    tokens: int = 0  # what making it cost: model tokens, dollars, seconds (proposing plus evaluating)
    cost: float = 0.0
    seconds: float = 0.0

    @property
    def improved_parent(self) -> bool:
        return self.score is not None and self.parent_score is not None and self.score > self.parent_score

    @property
    def new_best(self) -> bool:
        return self.score is not None and (self.best_before is None or self.score > self.best_before)


@dataclass(frozen=True)
class ImproverContext:
    """A read-only snapshot of the search for one improver call (``state`` is the improver's own)."""

    archive: Archive  # a copy: changing it changes nothing in the search
    rng: random.Random
    state: dict[str, Any]
    operators: Mapping[str, tuple[str, ...]]  # proposer name -> its operator names
    settings: Mapping[str, Any]
    budget: int
    evaluations: int = 0
    population: tuple[tuple[int, float], ...] = ()  # every valid (id, score), oldest first
    # what paid in earlier searches (rsi.memory), or empty
    memory: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # (proposer, operator) of each proposal chosen and not resolved yet, oldest first: written ahead
    # ([run] lookahead), e.g. a model's call under way; its outcome is not known yet
    writing: tuple[tuple[str, str | None], ...] = ()


class ImproverFailed(RsiError):
    """The improver raised, returned something that is not a valid Step, or tried to change what
    the engine owns."""


class Improver:
    """A loaded improver module with its optional hooks filled in."""

    def __init__(self, module: ModuleType, path: Path):
        self.module = module
        self.path = path
        next_step = getattr(module, "next_step", None)
        if not callable(next_step):
            raise RsiError(f"{path}: an improver must define `next_step(ctx) -> Step`; see rsi/improvers/seed.py")
        self._next_step: Callable[[ImproverContext], Step] = next_step
        self._start: Callable[[ImproverContext], None] = getattr(module, "start", lambda ctx: None)
        self._observe: Callable[[ImproverContext, Step, Outcome], None] = getattr(
            module, "observe", lambda ctx, step, outcome: None
        )
        defaults = getattr(module, "DEFAULTS", {})
        self.defaults: dict[str, Any] = dict(defaults) if isinstance(defaults, dict) else {}

    @property
    def source(self) -> str:
        return self.path.read_text()

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Every ``[improver]`` key must be one the improver declares in ``DEFAULTS``."""
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise RsiError(f"[improver] {', '.join(unknown)}: not a setting of the improver {self.path} "
                           f"(its settings, from its DEFAULTS: {known}); remove the key or fix its name")

    def start(self, ctx: ImproverContext) -> None:
        self._call("start", self._start, ctx)

    def next_step(self, ctx: ImproverContext) -> Step:
        step = self._call("next_step", self._next_step, ctx)
        if not isinstance(step, Step):
            raise ImproverFailed(f"the improver {self.path}: next_step returned {type(step).__name__}, not a Step")
        return step

    def observe(self, ctx: ImproverContext, step: Step, outcome: Outcome) -> None:
        self._call("observe", self._observe, ctx, step, outcome)

    def _call(self, hook: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except dataclasses.FrozenInstanceError as exc:
            raise ImproverFailed(
                f"the improver {self.path} tried to change the engine's state in {hook} ({exc}): ctx is read-only "
                "but for ctx.state; budgets and counts belong to the engine") from None
        except RsiError:
            raise
        except Exception as exc:  # the improver's own bug: name it
            raise ImproverFailed(f"the improver {self.path} failed in {hook}: {type(exc).__name__}: {exc}") from exc


def snapshot(archive: Archive, rng: random.Random, state: dict[str, Any], operators: Mapping[str, list[str]],
             settings: Mapping[str, Any], budget: int, evaluations: int,
             population: list[tuple[int, float]], memory: Mapping[str, Any] | None = None,
             writing: tuple[tuple[str, str | None], ...] = ()) -> ImproverContext:
    """A fresh read-only context: nothing the improver does to it reaches the search."""
    return ImproverContext(
        archive=archive.copy(), rng=rng, state=state,
        operators=MappingProxyType({name: tuple(ops) for name, ops in operators.items()}),
        settings=MappingProxyType(dict(settings)), budget=budget, evaluations=evaluations,
        population=tuple(population), memory=memory if memory is not None else MappingProxyType({}),
        writing=tuple((str(proposer), operator) for proposer, operator in writing),
    )


def load_improver(path: str | Path | None = None) -> Improver:
    """Load an improver from a file; None loads the seed improver that ships with rsi."""
    file = Path(path).resolve() if path else SEED_IMPROVER
    if not file.is_file():
        raise RsiError(f"{file}: no such improver file; pass a .py file defining next_step(ctx)")
    name = f"rsi_improver_{abs(hash(str(file)))}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise RsiError(f"{file}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: show what broke
        raise RsiError(f"{file}: failed to import: {type(exc).__name__}: {exc}") from None
    return Improver(module, file)
