"""One inner search: an ordinary rsi run of a suite problem, driven by a given improver, in-process.

This is what a meta-utility measurement repeats thousands of times, so it must be cheap, and it
must be the engine itself: the same ``Search`` (improver hooks, archive, mutate proposer, store,
duplicate and edit checks) driven by the same ``drive`` loop, only with ``ForkExecutor`` instead of
a pool of warm workers, and without the program-adoption hooks (they would spend evaluations
outside the budget). It runs inside an evaluation child that the sandbox already isolates and
caps (``rsi.meta.evaluators.produce``); each inner evaluation is one more fork of that child, with
its own CPU and wall limits, so that a mutated program that loops forever or corrupts the
evaluator's module state costs one evaluation, not the whole search.

Measured on the 2-core development machine (CPU per evaluation of a 100-evaluation search): the
engine's own work (proposals, including the invalid and duplicate ones, review, store commits) about
12 ms; the fork 5-7 ms (once the evaluator has been warmed in the parent: numpy's lazy first calls
cost up to 70 ms in every fresh child otherwise); the suite's evaluations 0.3-35 ms. A training
meta-evaluation (14 searches x 100 evaluations) costs 45-60 CPU seconds. Nested pools would add an
interpreter start (about a second) per search; evaluating in-process without the fork would save
the 5 ms but lets one mutated program (``gap = gap + 1.5`` in the sorting problem) hang the whole
search, or poison the evaluator's module state for every later evaluation.

What an inner search reports is *not* trusted: the caller re-scores the returned program.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..improvers import Improver
from ..memory import run_stats
from ..problem import Problem
from ..run import drive
from ..sandbox.fork import ForkExecutor
from ..search import Search


@dataclass
class InnerResult:
    """What one inner search found (as it saw it: untrusted until re-scored)."""

    best_source: str
    best_score: float | None
    evaluations: int
    stop_reason: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    operators: dict[str, dict[str, int]] = field(default_factory=dict)  # per arm: tries, improved, new bests


def inner_settings(problem: Problem, budget: int, seed: int):
    """The problem's own settings, with the meta-utility's budget and seed, one worker, and the
    program-promotion gate off (it would spend evaluations outside the budget)."""
    settings = problem.settings
    return settings.model_copy(update={
        "run": settings.run.model_copy(update={"budget": budget, "seed": seed, "workers": 1, "time": None}),
        "evaluator": settings.evaluator.model_copy(update={"holdout_every_best": False}),
        "oversight": settings.oversight.model_copy(update={"promote_every": None}),
    })


def search(problem: Problem, evaluate: Callable[[str], Any], improver: Improver, seed: int, budget: int,
           folder: Path, eval_cpu_seconds: float = 1.0, eval_wall_seconds: float = 3.0,
           memory: Mapping[str, Any] | None = None) -> InnerResult:
    """Run ``improver`` on ``problem`` for ``budget`` evaluations in ``folder``; the best program.

    ``problem`` is used as given (its root is replaced by an empty folder under ``folder``, so
    nothing in the search reads the problem's real folder: its reference solution stays out of
    reach when the sandbox allows reading the task folder only).
    """
    started = time.monotonic()
    folder = Path(folder)
    root = folder / "problem"
    root.mkdir(parents=True, exist_ok=True)
    (root / "initial.py").write_text(problem.initial_source)
    problem = dataclasses.replace(problem, root=root, evaluator_path=None, evaluate=evaluate, has_holdout=False,
                                  settings=inner_settings(problem, budget, seed))
    search = Search.create(problem, folder / "run", improver=improver, meta={"inner": True}, memory=memory)
    executor = ForkExecutor(evaluate, folder / "eval", eval_cpu_seconds, eval_wall_seconds)
    try:
        summary = drive(search, executor)
        assert summary is not None
        best = summary.best
        return InnerResult(
            best_source=(best.source if best is not None else None) or problem.initial_source,
            best_score=best.score if best is not None else None,
            evaluations=summary.evaluations, stop_reason=summary.stop_reason,
            counts=dict(summary.counts), seconds=time.monotonic() - started,
            operators=run_stats(folder / "run"),
        )
    finally:
        executor.close()
        search.close()
