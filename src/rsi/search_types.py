"""The plain data a search hands out and takes in: run overrides, usage, progress snapshots, the
summary of a finished search, per-task evaluation seeds, and the hook contract (work around a search).

Kept apart from ``rsi.search`` (the ask/tell machinery) so that both read top to bottom; ``rsi.search``
re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import RsiError
from .settings import ProblemSettings
from .status import StopReason
from .storage import Candidate

if TYPE_CHECKING:
    from .improvers import Outcome
    from .sandbox.types import EvalResult
    from .search import Search


def eval_seed(run_seed: int, candidate_id: int, kind: str = "train") -> int:
    """Per-task evaluation seed: a function of the run seed and the candidate only."""
    salt = 0 if kind == "train" else 7919
    return (run_seed * 1_000_003 + candidate_id * 65_537 + salt) % (2**31 - 1)


@dataclass
class Overrides:
    """Values that take precedence over problem.toml's ``[run]`` (None: keep the setting)."""

    budget: int | None = None
    time: float | None = None
    seed: int | None = None
    workers: int | None = None
    memory: str | None = None  # a memory file (an absolute path or one relative to the working directory)
    executor: str | None = None
    address: str | None = None  # [ray] address
    lookahead: int | None = None
    proposal_order: str | None = None  # "chosen" or "written" ([run] proposal_order)
    max_tokens: int | None = None

    def apply(self, settings: ProblemSettings) -> ProblemSettings:
        if self.proposal_order not in (None, "chosen", "written"):
            raise RsiError(f"proposal_order {self.proposal_order!r}: give 'chosen' (the same seed, the same run) or "
                           "'written' (a slow model never holds up other children; the run depends on timing)")
        given = self.given()
        address = given.pop("address", None)
        if self.memory is not None:
            given["memory"] = str(Path(self.memory).resolve())
        run = settings.run.model_copy(update=given)
        ray = settings.ray if address is None else settings.ray.model_copy(update={"address": address})
        return settings.model_copy(update={"run": run, "ray": ray})

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class Usage:
    """What a search has spent, counted by the engine."""

    evaluations: int
    proposals: int
    cpu_seconds: float
    tokens: int
    cost: float
    seconds: float  # wall time of this session


@dataclass(frozen=True)
class Snapshot:
    """What a progress display shows; ``Search.snapshot()`` after each result."""

    evaluations: int
    budget: int
    best_score: float | None
    best_id: int | None
    evals_per_second: float
    failed_share: float
    elapsed: float
    time_left: float | None
    counts: dict[str, int]
    waiting: str | None = None
    tokens: int = 0  # model tokens and dollars spent so far (model proposers)
    cost: float = 0.0


@dataclass(frozen=True)
class Summary:
    """How a search ended."""

    run_dir: Path
    stop_reason: StopReason
    evaluations: int
    best: Candidate | None
    seed: Candidate | None  # None for a search stopped before its seed was even proposed
    counts: dict[str, int] = field(default_factory=dict)
    holdout_errors: dict[int, str] = field(default_factory=dict)  # held-out evaluations that failed, and why
    detail: str | None = None  # more on the stop reason (what the improver did, for IMPROVER_FAILED)


class Hook(Protocol):
    """Work around a search. Every method is optional in spirit: subclass ``BaseHook``."""

    name: str

    def attach(self, search: Search, state: dict[str, Any] | None) -> None: ...

    def after(self, search: Search, outcome: Outcome) -> None: ...

    def on_result(self, search: Search, result: EvalResult) -> None: ...

    def at_end(self, search: Search) -> None: ...

    def state(self) -> dict[str, Any] | None: ...


class BaseHook:
    """No-op hook methods: override what you need."""

    name = "hook"

    def attach(self, search: Search, state: dict[str, Any] | None) -> None:
        """Called once when the search is built (``state``: what ``state()`` saved, on resume)."""

    def after(self, search: Search, outcome: Outcome) -> None:
        """Called after each evaluated child is applied (in ticket order)."""

    def on_result(self, search: Search, result: EvalResult) -> None:
        """The result of an evaluation this hook requested."""

    def at_end(self, search: Search) -> None:
        """The search stopped proposing and every child is in; final requests may be made here."""

    def state(self) -> dict[str, Any] | None:
        """JSON-able state saved with the search's loop state (None: nothing to save)."""
        return None
