"""Driving a search: move tasks from ``Search.ask`` to an executor and results back to ``Search.tell``.

``drive(search, executor)`` is the one loop every driver in rsi uses (``rsi run``, the inner
searches of self-improvement, ``rsi self-improve``). ``Run`` is what ``rsi run`` drives: a search
with the adoption gate and held-out reports as hooks, evaluated by the executor its settings name
(the sandboxed local pool by default), its best re-checked in a fresh worker and written to
``best.py`` at the end.

    run = Run.create("examples/binpack", out="runs/bp", overrides=Overrides(budget=200))
    summary = run.execute()          # Run.resume("runs/bp").execute() continues it later

Nothing here installs signal handlers or prints: a caller that wants Ctrl-C to stop the run
cleanly calls ``run.search.stop(StopReason.INTERRUPTED)`` from its handler (the CLI does).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from .errors import SearchError
from .executors import Executor
from .improvers import Improver, ImproverFailed
from .oversight.holdout import HeldOutReports
from .oversight.promotion import PromotionGate, recheck_best
from .oversight.signing import sign_run
from .problem import Problem
from .registry import executors
from .report.html import write_after_run
from .sandbox.scratch import new_scratch
from .search import Overrides, Search, Snapshot, Summary
from .status import StopReason

STOP_FILE = "STOP"
POLL_SECONDS = 0.2  # how long the loop waits for a result before it looks at the stop file again
WRITING_POLL_SECONDS = 0.02  # ... and while proposals are being written ahead ([run] lookahead)

__all__ = ["STOP_FILE", "Overrides", "Run", "drive"]


def drive(search: Search, executor: Executor, *, on_progress: Callable[[Snapshot], None] | None = None,
          stop_file: Path | None = None, before_finish: Callable[[Search], None] | None = None,
          finish: bool = True) -> Summary | None:
    """Run ``search`` on ``executor`` until it is done (or stopped), then ``finish`` it
    (``before_finish(search)`` first, unless it was interrupted; ``finish=False``: leave it open,
    e.g. to ``extend`` its budget and drive it again, and return None).

    A ``stop_file`` that appears stops the search (``rsi stop``); an evaluator whose files change
    stops it too; ``search.stop(StopReason.INTERRUPTED)`` from another thread or a signal handler
    abandons what is in flight within ``POLL_SECONDS``. With proposals written ahead (``[run]
    lookahead``), results keep being collected and told while a model writes, and a worker that
    frees up gets the next child as soon as it is written.
    """
    while not search.done:
        if stop_file is not None and stop_file.exists():
            stop_file.unlink(missing_ok=True)
            search.stop(StopReason.STOP_REQUESTED)
        if search.stop_reason is StopReason.INTERRUPTED:
            break
        while executor.in_flight < executor.workers:
            task = search.ask()
            if task is None:
                break
            executor.submit(task)
        if search.done:
            break
        if executor.in_flight == 0:
            if search.wait_for_proposal(POLL_SECONDS) or search.writing:
                continue  # a model is writing the next child (or finished it since ask) and nothing is evaluated
            raise SearchError("the search waits for results that its executor does not hold; a task from ask() "
                              "was not submitted, or the executor lost it")
        # while proposals are written ahead, look back soon: one may be ready for an idle worker
        results = executor.collect(timeout=WRITING_POLL_SECONDS if search.writing else POLL_SECONDS)
        for result in results:
            if _interrupted(search):
                break
            search.tell(result)
            if on_progress is not None:
                on_progress(search.snapshot())
        if results:
            changed = executor.verify_evaluator()
            if changed:
                search.stop(StopReason.EVALUATOR_CHANGED, changed)
    if search.stop_reason is StopReason.INTERRUPTED:
        executor.cancel()
    elif before_finish is not None:
        before_finish(search)
    return search.finish() if finish else None


def _interrupted(search: Search) -> bool:
    return search.stop_reason is StopReason.INTERRUPTED


class Run:
    """``rsi run``: a search with the adoption gate and held-out reports, on its executor."""

    def __init__(self, search: Search, holdout: HeldOutReports):
        self.search = search
        self.holdout = holdout

    @classmethod
    def create(cls, problem: Problem | str | Path, out: str | Path | None = None, overrides: Overrides | None = None,
               improver: Improver | str | Path | None = None, *, trust_improver: bool = False) -> Run:
        """A new run; an improver file runs sandboxed unless ``trust_improver`` (see ``Search.create``)."""
        holdout = HeldOutReports()
        return cls(Search.create(problem, out, overrides, improver, hooks=[PromotionGate(), holdout],
                                 trust_improver=trust_improver), holdout)

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: Overrides | None = None, *, problem: Problem | None = None) -> Run:
        holdout = HeldOutReports()
        return cls(Search.resume(run_dir, overrides, problem=problem, hooks=[PromotionGate(), holdout]), holdout)

    @property
    def store(self):
        return self.search.store

    @property
    def run_dir(self) -> Path:
        return self.search.run_dir

    @property
    def settings(self):
        return self.search.settings

    @property
    def problem(self) -> Problem:
        return self.search.problem

    def execute(self, on_progress: Callable[[Snapshot], None] | None = None) -> Summary:
        """Run until the budget, the time limit, ``rsi stop`` or ``search.stop``; then re-check the
        best in a fresh worker and write ``best.py``. An improver that fails (raises, hangs, crashes,
        answers garbage) stops the run with ``StopReason.IMPROVER_FAILED`` and the reason in
        ``Summary.detail``; what is in flight stays pending, evaluated on resume."""
        search = self.search
        scratch = new_scratch()
        executor: Executor | None = None
        detail = None
        try:
            executor = executors.create(search.settings.run.executor, search.problem, search.settings, scratch)
            search.store.set_meta("score_mode", executor.score_mode)
            search.store.set_meta("sandbox_level", executor.sandbox_level)
            fresh_worker = getattr(executor, "evaluate_fresh", None)  # where the executor evaluates (e.g. Ray)
            try:
                summary = drive(search, executor, on_progress=on_progress, stop_file=self.run_dir / STOP_FILE,
                                before_finish=lambda done: recheck_best(done, fresh_worker))
            except ImproverFailed as exc:
                detail = str(exc)
                search.stop(StopReason.IMPROVER_FAILED, detail)
                executor.cancel()
                summary = search.finish()
            assert summary is not None
        finally:
            if executor is not None:
                executor.close()
            shutil.rmtree(scratch, ignore_errors=True)
        best = search.store.best()
        if best is not None and best.source:
            (self.run_dir / "best.py").write_text(best.source)
        write_after_run(self.run_dir)  # report.html, as `rsi report` writes it
        sign_run(self.run_dir, search.store.conn)  # audit.sig, where the sign extra is installed
        return dataclasses.replace(summary, best=best, holdout_errors=dict(self.holdout.errors), detail=detail)
