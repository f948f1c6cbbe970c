"""What the operating system enforces on an evaluation, and where isolation is applied.

Two hooks, both called by the worker (``rsi.sandbox.worker``):

- ``prepare_worker`` runs once in each worker at start-up, before the evaluator is imported.
  Whatever is costly and shared by all candidates belongs here (namespaces: network, mount,
  user; a read-only view of the file system).
- ``enter_sandbox`` runs in every evaluation child, in its own process group, once it has its
  task (children are forked in advance and wait for one) and before any untrusted code.
  Per-candidate restrictions belong here (rlimits now; Landlock rules for the task folder and a
  seccomp filter later). Its working directory is already the task folder, fd 1 and 2 already
  point at the captured output.

Both run in a single-threaded context that must stay cheap: no imports, no subprocesses.
"""

from __future__ import annotations

import math
import os
import resource

from .types import Limits

MIB = 1024 * 1024


def prepare_worker(scratch_dir: str, limits: Limits) -> None:
    """Once per worker, before the evaluator is imported. Nothing to do yet."""


def enter_sandbox(task_dir: str, limits: Limits) -> None:
    """In the evaluation child, after fork and setsid, before the evaluator is called."""
    apply_rlimits(limits)


def apply_rlimits(limits: Limits) -> None:
    """Set the per-process caps of ``limits`` on the calling process.

    - RLIMIT_AS: address space, ``memory_mb``. It counts what the warm worker had already
      mapped (the evaluator's imports, numpy: about 100 MB), see ``EvaluatorPool.zygote_mb``.
      Exceeding it shows up as ``MemoryError`` in Python.
    - RLIMIT_CPU: SIGXCPU after ``cpu_seconds`` (rounded up), SIGKILL one second later. It is
      per process: a candidate that forks gets that much per process, bounded by the wall time.
    - RLIMIT_FSIZE: largest file the candidate may write, its captured stdout/stderr included
      (Python ignores SIGXFSZ, so a write beyond fails with "File too large").
    - RLIMIT_NOFILE: open files. RLIMIT_CORE: 0, no core dumps.
    - RLIMIT_NPROC: only for a non-root user, where it counts *all* processes of that user,
      not only this candidate's. Root is exempt from it, so as root nothing caps the number of
      processes (a fork bomb is stopped by the wall timeout only, until PID namespaces or a
      pids cgroup arrive with the Sandbox work).
    """
    cpu = max(1, math.ceil(limits.cpu_seconds))
    _cap(resource.RLIMIT_AS, limits.memory_mb * MIB)
    _cap(resource.RLIMIT_CPU, cpu, hard=cpu + 1)
    _cap(resource.RLIMIT_FSIZE, limits.file_bytes)
    _cap(resource.RLIMIT_NOFILE, limits.open_files)
    _cap(resource.RLIMIT_CORE, 0)
    if os.geteuid() != 0:
        _cap(resource.RLIMIT_NPROC, limits.processes)


def _cap(which: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit to ``soft`` (and ``hard``), never above the hard limit already in place."""
    _, old_hard = resource.getrlimit(which)
    if hard is None:
        hard = soft
    if old_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, old_hard), min(hard, old_hard)
    resource.setrlimit(which, (soft, hard))
