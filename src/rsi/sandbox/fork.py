"""An executor that forks this process for each evaluation: cheap, and only as isolated as rlimits.

``ForkExecutor`` runs one evaluation at a time in a child forked from the calling process, which
already holds the evaluator in memory (a callable, or a trusted evaluator module it imported). The
child lowers its own CPU (and optionally address-space) limit, seeds ``random`` and numpy with the
task seed as the pool's workers do, evaluates, and sends the metrics back over a pipe; the parent
kills it at the wall limit. A program that loops forever or corrupts the evaluator's module state
costs one evaluation, not the whole search.

It is *not* the sandbox: no namespaces, Landlock or seccomp. rsi uses it where the whole search
already runs inside a sandboxed process (the inner searches of self-improvement), and for
evaluators given as Python callables (``rsi.problem_from``), where your own process is the only
place the callable exists. Untrusted programs from a problem folder go to ``EvaluatorPool``.
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .procs import read_child
from .protocol import check_metrics, split_result, write_all
from .types import EvalResult, EvalTask

RESULT_BYTES = 1 << 20  # the most a forked evaluation may send back


class ForkExecutor:
    """An ``Executor`` that evaluates one task at a time, each in a child forked from this process.

    The child lowers its own CPU limit to ``cpu_seconds`` (SIGXCPU, then SIGKILL), seeds
    ``random`` and numpy with the task seed as the pool's workers do, evaluates, and sends the
    metrics back over a pipe; the parent kills it at ``wall_seconds``. Its output goes nowhere.
    """

    workers = 1
    score_mode = "beside"  # the score is computed in the candidate's process
    sandbox_level = "none"  # rlimits only

    def __init__(self, evaluate: Callable[..., Any], folder: Path, cpu_seconds: float = 1.0,
                 wall_seconds: float = 3.0, memory_mb: int | None = None):
        self.evaluate = evaluate
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cpu_seconds = cpu_seconds
        self.wall_seconds = wall_seconds
        self.memory_mb = memory_mb
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

    def cancel(self) -> None:
        self._done = []

    def close(self) -> None:
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
            return EvalResult(task.candidate_id, task.kind, "timeout", ticket=task.ticket,
                              error=f"wall time limit of {self.wall_seconds:g}s", wall_seconds=wall, cpu_seconds=cpu)
        try:
            reply = json.loads(data) if data else None
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            if os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) in (signal.SIGXCPU, signal.SIGKILL):
                return EvalResult(task.candidate_id, task.kind, "timeout", ticket=task.ticket,
                                  error=f"CPU time limit of {self.cpu_seconds:g}s", wall_seconds=wall, cpu_seconds=cpu)
            return EvalResult(task.candidate_id, task.kind, "error", error="the evaluation died without a result",
                              wall_seconds=wall, cpu_seconds=cpu, ticket=task.ticket)
        if reply.get("error") is not None:
            return EvalResult(task.candidate_id, task.kind, "error", error=str(reply["error"])[:2000],
                              wall_seconds=wall, cpu_seconds=cpu, ticket=task.ticket)
        return EvalResult(task.candidate_id, task.kind, "ok", metrics=reply["metrics"], wall_seconds=wall,
                          cpu_seconds=cpu, ticket=task.ticket, data=reply.get("data"))

    def _wait(self, pid: int, fd: int, started: float) -> tuple[bytes, str]:
        data, outcome = read_child(fd, self.wall_seconds, RESULT_BYTES, lambda: _kill(pid), started)
        return (b"", "done") if outcome == "too big" else (data, outcome)

    def _child(self, task: EvalTask, path: str, write_end: int) -> None:
        cpu = max(1, math.ceil(self.cpu_seconds))
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard == resource.RLIM_INFINITY or hard > cpu + 1:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        if self.memory_mb is not None:
            cap = self.memory_mb * 1024 * 1024
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard == resource.RLIM_INFINITY or hard > cap:
                resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        random.seed(task.seed)
        try:
            import numpy

            numpy.random.seed(task.seed % 2**32)
        except ImportError:
            pass
        artifacts = None
        try:
            value = self.evaluate(path) if task.context is None else self.evaluate(path, task.context)
            value, artifacts = split_result(value)
            metrics, error = check_metrics(value)
        except MemoryError:
            metrics, error = None, "MemoryError"
        except BaseException as exc:  # noqa: BLE001 - candidates raise anything, SystemExit included
            metrics, error = None, f"{type(exc).__name__}: {exc}"[:2000]
        try:
            data = json.dumps({"metrics": metrics, "error": error, "data": artifacts}, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            data = json.dumps({"metrics": None, "error": f"artifacts are not plain JSON data: {exc}"}).encode()
        write_all(write_end, data)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
