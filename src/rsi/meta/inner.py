"""One inner search: an ordinary rsi run of a suite problem, driven by a given improver, in-process.

This is what a meta-utility measurement repeats thousands of times, so it must be cheap, and it
must be the engine itself: ``InnerRun`` is a ``Run`` (same improver hooks, archive, mutate
proposer, store, duplicate and edit checks), only executed with ``ForkExecutor`` instead of a
pool of warm workers. It runs inside an evaluation child that the sandbox already isolates and
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
import json
import math
import os
import random
import resource
import select
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..improvers import Improver
from ..problem import Problem
from ..run import Run, RunSummary
from ..sandbox.types import EvalResult, EvalTask
from ..storage import Store

RESULT_BYTES = 1 << 20  # the most a forked evaluation may send back


@dataclass
class InnerResult:
    """What one inner search found (as it saw it: untrusted until re-scored)."""

    best_source: str
    best_score: float | None
    evaluations: int
    stop_reason: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _metrics(value: Any) -> tuple[dict[str, float] | None, str | None]:
    """Finite float metrics with a finite ``combined_score``, or the reason they are not."""
    if not isinstance(value, dict) or "combined_score" not in value:
        return None, "evaluate must return a dict with 'combined_score'"
    out: dict[str, float] = {}
    for key, raw in value.items():
        try:
            number = float(raw)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if key == "combined_score" and not math.isfinite(number):
            return None, f"combined_score is {raw!r}, not a finite number"
        if isinstance(key, str) and math.isfinite(number):
            out[key] = number
    return out, None


class ForkExecutor:
    """The evaluator pool's interface (``workers``, ``in_flight``, ``submit``, ``collect``,
    ``cancel_all``) for one evaluation at a time, each in a child forked from this process.

    The child lowers its own CPU limit to ``cpu_seconds`` (SIGXCPU, then SIGKILL), seeds
    ``random`` and numpy with the task seed as the pool's workers do, evaluates, and sends the
    metrics back over a pipe; the parent kills it at ``wall_seconds``. Its output goes nowhere.
    """

    workers = 1

    def __init__(self, evaluate: Callable[[str], Any], folder: Path, cpu_seconds: float = 1.0,
                 wall_seconds: float = 3.0):
        self.evaluate = evaluate
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cpu_seconds = cpu_seconds
        self.wall_seconds = wall_seconds
        self._done: list[EvalResult] = []
        try:  # numpy's first seeding costs ~20 ms: pay it here once, not in every child
            import numpy

            numpy.random.seed(0)
        except ImportError:
            pass

    @property
    def in_flight(self) -> int:
        return len(self._done)

    def submit(self, task: EvalTask) -> None:
        path = self.folder / f"program_{task.candidate_id}.py"
        path.write_text(task.source)
        try:
            self._done.append(self._run(task, str(path)))
        finally:
            path.unlink(missing_ok=True)

    def collect(self, timeout: float) -> list[EvalResult]:
        done, self._done = self._done, []
        return done

    def cancel_all(self) -> None:
        self._done = []

    def verify_evaluator(self) -> str | None:
        """Nothing to check here: the evaluator was loaded before the sandbox, and the pool that
        runs this search checks its files itself."""
        return None

    def _run(self, task: EvalTask, path: str) -> EvalResult:
        started = time.monotonic()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # ------------------------------------------------------------ the child
            code = 0
            try:
                os.close(read_end)
                self._child(task, path, write_end)
            except BaseException:  # noqa: BLE001 - nothing may escape a forked child
                code = 70
            finally:
                os._exit(code)
        os.close(write_end)
        data, status = self._wait(pid, read_end, started)
        cpu = 0.0
        try:
            _, wait_status, usage = os.wait4(pid, 0)
            cpu = usage.ru_utime + usage.ru_stime
        except ChildProcessError:
            wait_status = 0
        wall = time.monotonic() - started
        if status == "timeout":
            return EvalResult(task.candidate_id, task.kind, "timeout",
                              error=f"wall time limit of {self.wall_seconds:g}s", wall_seconds=wall, cpu_seconds=cpu)
        try:
            reply = json.loads(data) if data else None
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            if os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) in (signal.SIGXCPU, signal.SIGKILL):
                return EvalResult(task.candidate_id, task.kind, "timeout",
                                  error=f"CPU time limit of {self.cpu_seconds:g}s", wall_seconds=wall, cpu_seconds=cpu)
            return EvalResult(task.candidate_id, task.kind, "error", error="the evaluation died without a result",
                              wall_seconds=wall, cpu_seconds=cpu)
        if reply.get("error") is not None:
            return EvalResult(task.candidate_id, task.kind, "error", error=str(reply["error"])[:2000],
                              wall_seconds=wall, cpu_seconds=cpu)
        return EvalResult(task.candidate_id, task.kind, "ok", metrics=reply["metrics"], wall_seconds=wall,
                          cpu_seconds=cpu)

    def _wait(self, pid: int, fd: int, started: float) -> tuple[bytes, str]:
        chunks: list[bytes] = []
        size = 0
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        try:
            while True:
                left = self.wall_seconds - (time.monotonic() - started)
                if left <= 0 or not poller.poll(int(left * 1000) + 1):
                    if left <= 0:
                        _kill(pid)
                        return b"", "timeout"
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    return b"".join(chunks), "done"
                size += len(chunk)
                if size > RESULT_BYTES:
                    _kill(pid)
                    return b"", "done"
                chunks.append(chunk)
        finally:
            os.close(fd)

    def _child(self, task: EvalTask, path: str, write_end: int) -> None:
        cpu = max(1, math.ceil(self.cpu_seconds))
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard == resource.RLIM_INFINITY or hard > cpu + 1:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        random.seed(task.seed)
        try:
            import numpy

            numpy.random.seed(task.seed % 2**32)
        except ImportError:
            pass
        try:
            metrics, error = _metrics(self.evaluate(path))
        except MemoryError:
            metrics, error = None, "MemoryError"
        except BaseException as exc:  # noqa: BLE001 - candidates raise anything, SystemExit included
            metrics, error = None, f"{type(exc).__name__}: {exc}"[:2000]
        data = json.dumps({"metrics": metrics, "error": error}).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view):]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class InnerRun(Run):
    """A Run executed with an in-process executor: no pool, no scratch folder, no signals."""

    def search(self, executor: ForkExecutor) -> RunSummary:
        self._started = time.monotonic()
        self._evals_at_start = self.ctx.evaluations
        self.pool = executor
        self._evaluate_seed(executor)
        self._loop(executor, None)
        self._drain(executor)
        return self._finish()


def inner_settings(problem: Problem, budget: int, seed: int):
    """The problem's own settings, with the meta-utility's budget and seed, one worker, and the
    program-promotion gate off (it would spend evaluations outside the budget)."""
    settings = problem.settings
    updates: dict[str, Any] = {
        "run": settings.run.model_copy(update={"budget": budget, "seed": seed, "workers": 1, "time": None}),
        "evaluator": settings.evaluator.model_copy(update={"holdout_every_best": False}),
    }
    if "oversight" in type(settings).model_fields:
        updates["oversight"] = settings.oversight.model_copy(update={"promote_every": 10**9})
    return settings.model_copy(update=updates)


def search(problem: Problem, evaluate: Callable[[str], Any], improver: Improver, seed: int, budget: int,
           folder: Path, eval_cpu_seconds: float = 1.0, eval_wall_seconds: float = 3.0) -> InnerResult:
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
    problem = dataclasses.replace(problem, root=root)
    settings = inner_settings(problem, budget, seed)
    store = Store.create(folder / "run", {"settings": settings.model_dump(mode="json"), "inner": True})
    try:
        run = InnerRun(store, problem, settings, improver)
        improver.start(run.ctx)
        summary = run.search(ForkExecutor(evaluate, folder / "eval", eval_cpu_seconds, eval_wall_seconds))
        best = summary.best
        return InnerResult(
            best_source=(best.source if best is not None else None) or problem.initial_source,
            best_score=best.score if best is not None else None,
            evaluations=summary.evaluations, stop_reason=summary.stop_reason,
            counts=dict(summary.counts), seconds=time.monotonic() - started,
        )
    finally:
        store.close()
