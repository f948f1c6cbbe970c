"""The improver contract: the search policy as a plain Python module.

An improver module defines
    next_step(ctx) -> Step                         required: which parent, inspirations, proposer,
                                                   operator, island and how many children
    start(ctx) -> None                             optional: initialise ctx.state
    observe(ctx, step, outcome) -> None            optional: learn from each finished child
The engine owns evaluation, storage, budgets and isolation; the improver only decides. Its state
is ``ctx.state``, a JSON-able dict persisted with every commit (so a resumed run continues it),
and its only randomness is ``ctx.rng``.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ..archive import Archive
from ..errors import RsiError

SEED_IMPROVER = Path(__file__).with_name("seed.py")


@dataclass
class Step:
    parent: int
    inspirations: list[int] = field(default_factory=list)
    island: int = 0
    proposer: str = "mutate"
    operator: str | None = None
    children: int = 1


@dataclass(frozen=True)
class Outcome:
    candidate_id: int
    status: str  # ok, error, timeout, invalid, duplicate, rejected
    score: float | None
    parent_score: float | None
    best_before: float | None  # best valid score before this child

    @property
    def improved_parent(self) -> bool:
        return self.score is not None and self.parent_score is not None and self.score > self.parent_score

    @property
    def new_best(self) -> bool:
        return self.score is not None and (self.best_before is None or self.score > self.best_before)


@dataclass
class ImproverContext:
    archive: Archive
    rng: random.Random
    state: dict[str, Any]
    operators: dict[str, list[str]]  # proposer name -> its operator names
    settings: dict[str, Any]
    budget: int
    evaluations: int = 0
    population: list[tuple[int, float]] = field(default_factory=list)  # every valid (id, score), oldest first


class Improver:
    """A loaded improver module with its optional hooks filled in."""

    def __init__(self, module: ModuleType, path: Path):
        self.module = module
        self.path = path
        next_step = getattr(module, "next_step", None)
        if not callable(next_step):
            raise RsiError(f"{path}: an improver must define `next_step(ctx) -> Step`; see rsi/improvers/seed.py")
        self.next_step: Callable[[ImproverContext], Step] = next_step
        self.start: Callable[[ImproverContext], None] = getattr(module, "start", lambda ctx: None)
        self.observe: Callable[[ImproverContext, Step, Outcome], None] = getattr(
            module, "observe", lambda ctx, step, outcome: None
        )

    @property
    def source(self) -> str:
        return self.path.read_text()


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
