"""Where evaluations run: the ``Executor`` protocol, and rsi's two executors.

A search hands out ``EvalTask``s (``Search.ask``) and takes back ``EvalResult``s (``Search.tell``);
an executor is whatever runs tasks in between. It never sees the search, and the search never
sees it: the driver (``rsi.run.drive``) moves tasks and results between the two.

- ``local`` (default): ``EvaluatorPool``, warm sandboxed workers on this machine.
- ``fork``: ``ForkExecutor``, one child forked from this process per evaluation; rlimits only,
  for searches that already run inside a sandbox, and for evaluators given as Python callables.
- ``ray``: ``RayPool``, the same sandboxed workers as ``local``, one per Ray actor on the nodes of
  a Ray cluster (``[ray]`` settings; the optional extra ``rsi[ray]``).

Others plug in by name (``rsi.executors.register``, or an ``rsi.executors`` entry point): a
factory ``(problem, settings, scratch) -> Executor``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import ProblemError
from .problem import Problem
from .registry import executors as registry
from .sandbox.types import EvalResult, EvalTask, Limits
from .settings import ProblemSettings


@runtime_checkable
class Executor(Protocol):
    """Runs evaluation tasks; results come back in any order, each carrying its task's ticket.

    ``submit`` starts a task (only while ``in_flight < workers``); ``collect(timeout)`` returns
    the results finished so far, waiting up to ``timeout`` seconds for at least one; ``cancel``
    kills everything running (their results never come); ``verify_evaluator`` returns what
    changed in the trusted evaluator's files since the executor started, or None; ``close``
    releases everything (idempotent).
    """

    @property
    def workers(self) -> int: ...

    @property
    def score_mode(self) -> str:
        """"split": scores come from trusted code the candidate never touched; "beside": not."""
        ...

    @property
    def sandbox_level(self) -> str:
        """"full", "partial" or "none": how isolated candidates are."""
        ...

    @property
    def in_flight(self) -> int: ...

    def submit(self, task: EvalTask) -> None: ...

    def collect(self, timeout: float) -> list[EvalResult]: ...

    def cancel(self) -> None: ...

    def verify_evaluator(self) -> str | None: ...

    def close(self) -> None: ...


def evaluation_limits(settings: ProblemSettings) -> Limits:
    """The per-evaluation OS limits that ``[evaluator]`` asks for."""
    ev = settings.evaluator
    return Limits(wall_seconds=ev.timeout, cpu_seconds=ev.cpu_seconds or 2 * ev.timeout,
                  memory_mb=ev.memory_mb, output_bytes=ev.output_bytes, evaluator_format=ev.format, guard=ev.guard,
                  cascade=tuple(ev.cascade_thresholds) if ev.cascade_thresholds is not None else None,
                  holdout_reads_folder=ev.holdout_reads_folder)


def local_executor(problem: Problem, settings: ProblemSettings, scratch: Path) -> Executor:
    """Warm sandboxed workers (``rsi.sandbox.pool.EvaluatorPool``), ``[run] workers`` of them."""
    from .sandbox.pool import EvaluatorPool

    if problem.evaluator_path is None:
        raise ProblemError(f"problem {problem.name!r} has its evaluator as a Python callable, which only the "
                           "'fork' executor can run; pass executor='fork', or give the evaluator as a file")
    return EvaluatorPool(problem.evaluator_path, settings.run.workers, evaluation_limits(settings), scratch)


def ray_executor(problem: Problem, settings: ProblemSettings, scratch: Path) -> Executor:
    """``[run] workers`` sandboxed workers on the Ray cluster ``[ray] address`` names
    (``rsi.sandbox.raypool.RayPool``); the problem's files travel in Ray's object store."""
    from .sandbox.raypool import RayPool

    if problem.evaluator_path is None:
        raise ProblemError(f"problem {problem.name!r} has its evaluator as a Python callable, which only the "
                           "'fork' executor can run; give the evaluator as a file to run it on Ray")
    ray = settings.ray
    return RayPool(problem.evaluator_path, settings.run.workers, evaluation_limits(settings), address=ray.address,
                   cpus=ray.cpus, retries=ray.retries)


def fork_executor(problem: Problem, settings: ProblemSettings, scratch: Path) -> Executor:
    """One evaluation at a time, forked from this process (``rsi.sandbox.fork.ForkExecutor``)."""
    from .sandbox.fork import ForkExecutor

    limits = evaluation_limits(settings)
    return ForkExecutor(problem.evaluate or load_evaluate(problem), Path(scratch) / "fork",
                        cpu_seconds=limits.cpu_seconds, wall_seconds=limits.wall_seconds,
                        memory_mb=limits.memory_mb)


def load_evaluate(problem: Problem) -> Callable[[str], Any]:
    """Import the problem's trusted evaluator into this process; its ``evaluate`` function (for an
    OpenEvolve or ShinkaEvolve evaluator, or a cascade, the function ``rsi.compat`` calls it through)."""
    from . import compat

    path = problem.evaluator_path
    if path is None:
        raise ProblemError(f"problem {problem.name!r} has no evaluator file")
    compat.install_shims()
    spec = importlib.util.spec_from_file_location(f"rsi_evaluator_{abs(hash(str(path)))}", path)
    if spec is None or spec.loader is None:
        raise ProblemError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's evaluator: show what broke
        raise ProblemError(f"cannot use evaluator {path}: {type(exc).__name__}: {exc}") from None
    ev = problem.settings.evaluator
    wrapped = compat.evaluator_function(module, str(path), ev.format, ev.cascade_thresholds)
    if wrapped is not None:
        return wrapped
    evaluate = getattr(module, "evaluate", None)
    if not callable(evaluate):
        raise ProblemError(f"{path}: the 'fork' executor needs `evaluate(program_path)` (not the split contract)")
    return evaluate


register = registry.register
create = registry.create
get = registry.get
names = registry.names
