"""rsi: a recursive self-improvement engine, as a library.

A proposer changes a program, a trusted evaluator scores it in a sandbox, the best versions are
kept; the search policy doing this (the improver) is a plain module that rsi can improve too.

Load a problem, run a search, read the results::

    import rsi

    problem = rsi.load_problem("examples/binpack")          # or rsi.problem_from(source, evaluator)
    summary = rsi.improve(problem, out="runs/bp", budget=200, seed=1)
    print(summary.stop_reason, summary.best.score)

    results = rsi.open_run("runs/bp")                       # read it (also while it runs)
    print(results.diff(summary.best.id, against=1))

Step by step, with any executor (Optuna's ask/tell)::

    search = rsi.Search.create(problem, out="runs/bp2", overrides=rsi.Overrides(budget=50))
    executor = rsi.executors.create("local", problem, search.settings, scratch_folder)
    while not search.done:
        task = search.ask()                 # an EvalTask, or None while a result is due
        if task is not None:
            executor.submit(task)
        for result in executor.collect(timeout=0.2):
            search.tell(result)
    summary = search.finish()               # rsi.drive(search, executor) is this loop

The parts (each with its own docstring: ``help(rsi.Search)``):

- ``load_problem`` / ``problem_from``: a ``Problem`` (a folder, or a program string with an
  evaluator file or callable); ``load_files``: a program file and an evaluator file (+ OpenEvolve's
  config.yaml), as OpenEvolve's command line takes them.
- ``Search``: the core, ``ask()`` / ``tell()``, read-only state (``best``, ``archive``, ``usage``,
  ``counts``, ``stop_reason``), hooks (``BaseHook``) for work around it.
- ``Run``: a search with the adoption gate and held-out reports, on the executor its settings name
  (what ``rsi run`` does); ``improve`` is ``Run.create(...).execute()`` in one call.
- ``drive``: the loop between a search and an ``Executor``.
- ``open_run``: ``Results`` of a run folder (best, candidates, lineage, diff, audit trail).
- ``proposers`` / ``executors``: where they live, and their registries: ``rsi.proposers.register
  (name, factory)``, ``rsi.executors.create(name, problem, settings, scratch)``, ``names()``.
- ``load_improver``, ``Step``, ``Outcome``, ``ImproverContext``: the improver contract;
  ``toolkit``: the code-editing layer an improver writes its own operators with (``OPERATORS``).
- ``Status``, ``StopReason``; every error meant for a user is an ``RsiError`` whose message names
  the fix.

Names are imported on first use, so that ``import rsi`` stays cheap in sandbox workers.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .version import __version__

_EXPORTS = {
    "ProblemError": "errors", "ProgramError": "errors", "ProposalFailed": "errors", "RsiError": "errors",
    "RunError": "errors", "SearchError": "errors",
    "Executor": "executors",
    "ImproverContext": "improvers", "Outcome": "improvers", "Step": "improvers", "load_improver": "improvers",
    "Problem": "problem", "load_files": "problem", "load_problem": "problem", "problem_from": "problem",
    "executors": "", "proposers": "",  # submodules, each also the registry of its kind of plug-in
    "toolkit": "",  # the code-editing toolkit improvers write their own operators with
    "Results": "results", "open_run": "results",
    "Run": "run", "drive": "run",
    "BaseHook": "search", "Overrides": "search", "Search": "search", "Snapshot": "search", "Summary": "search",
    "Usage": "search",
    "Status": "status", "StopReason": "status",
}

if TYPE_CHECKING:
    from . import executors, proposers, toolkit
    from .errors import ProblemError, ProgramError, ProposalFailed, RsiError, RunError, SearchError
    from .executors import Executor
    from .improvers import ImproverContext, Outcome, Step, load_improver
    from .problem import Problem, load_files, load_problem, problem_from
    from .results import Results, open_run
    from .run import Run, drive
    from .search import BaseHook, Overrides, Search, Snapshot, Summary, Usage
    from .status import Status, StopReason


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rsi' has no attribute {name!r}")
    value = (importlib.import_module(f".{name}", __name__) if module == "" else
             getattr(importlib.import_module(f".{module}", __name__), name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def improve(problem: Problem | str | Path, out: str | Path | None = None, *, budget: int | None = None,
            time: float | None = None, seed: int | None = None, workers: int | None = None,
            improver: str | Path | None = None) -> Summary:
    """Improve ``problem`` (a ``Problem`` or a problem folder) in the run folder ``out`` until its
    budget is spent; the keyword arguments override problem.toml's ``[run]``. Returns the
    ``Summary`` (``best``, ``stop_reason``, ``evaluations``...). Continue later with
    ``rsi.Run.resume(out, rsi.Overrides(budget=...)).execute()``.

        summary = rsi.improve("examples/binpack", out="runs/bp", budget=100)
    """
    from .run import Run
    from .search import Overrides

    overrides = Overrides(budget=budget, time=time, seed=seed, workers=workers)
    return Run.create(problem, out, overrides, improver).execute()


__all__ = [
    "BaseHook", "Executor", "ImproverContext", "Outcome", "Overrides", "Problem", "ProblemError", "ProgramError",
    "ProposalFailed", "Results", "RsiError", "Run", "RunError", "Search", "SearchError", "Snapshot", "Status",
    "Step", "StopReason", "Summary", "Usage", "__version__", "drive", "executors", "improve", "load_improver",
    "load_files", "load_problem", "open_run", "problem_from", "proposers", "toolkit",
]
assert set(__all__) == set(_EXPORTS) | {"improve", "__version__"}
