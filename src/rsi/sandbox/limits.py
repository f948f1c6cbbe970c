"""What the operating system enforces on an evaluation, and where isolation is applied.

Two hooks, both called by the worker (``rsi.sandbox.worker``):

- ``prepare_worker`` runs once in each worker at start-up, before the evaluator is imported.
  Whatever is costly and shared by all candidates belongs here (namespaces: network, mount,
  IPC, UTS, user; the scratch tmpfs; see ``isolation.py``).
- ``enter_sandbox`` runs in every evaluation child, in its own process group, as soon as it is
  forked: children are forked in advance and wait for a task, so this costs the candidate no
  latency. The uid change, Landlock and seccomp, then rlimits. Its writable folder is renamed
  to the task's folder when the task comes.

Both run in a single-threaded context that must stay cheap: no imports, no subprocesses.
"""

from __future__ import annotations

import math
import os
import resource

from . import isolation as isolation_
from .types import Limits

MIB = 1024 * 1024


def prepare_worker(scratch_dir: str, limits: Limits, *, isolation: str = "full",
                   evaluator: str = "") -> isolation_.Plan:
    """Once per worker, before the evaluator is imported: namespaces, the scratch tmpfs, the
    seccomp program (``isolation.prepare``). ``isolation``: "full" (the strongest reachable)
    or "none" (resource limits only)."""
    return isolation_.prepare(scratch_dir, limits, isolation != "none", evaluator)


def enter_sandbox(folder: str | int, limits: Limits, kind: str = "train",
                  parent: int | None = None) -> None:
    """In the evaluation child, in its own process group, before it is given a task of
    ``kind`` (and so before any untrusted code): identity, Landlock and seccomp
    (``isolation.enter``), then resource limits. ``folder`` is its only writable folder (a path, or an O_PATH
    descriptor opened before the fork, which this closes); the worker renames it to the task's
    folder when it hands the task over."""
    isolation_.enter(isolation_.PLAN, folder, kind, os.getppid() if parent is None else parent)
    apply_rlimits(limits)  # after: the sandbox's own descriptors are closed by now (NOFILE)


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
    - RLIMIT_NPROC: counted per uid (per user namespace). Isolated, a candidate has a uid (as
      root) or a user namespace (as a user) of its worker's own, so this caps its processes and
      threads. Without either it counts *all* processes of the user, and root is exempt.
    """
    cpu = max(1, math.ceil(limits.cpu_seconds))
    _cap(resource.RLIMIT_AS, limits.memory_mb * MIB)
    _cap(resource.RLIMIT_CPU, cpu, hard=cpu + 1)
    _cap(resource.RLIMIT_FSIZE, limits.file_bytes)
    _cap(resource.RLIMIT_NOFILE, limits.open_files)
    _cap(resource.RLIMIT_CORE, 0)
    _cap(resource.RLIMIT_NPROC, limits.processes)


def _cap(which: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit to ``soft`` (and ``hard``), never above the hard limit already in place."""
    _, old_hard = resource.getrlimit(which)
    if hard is None:
        hard = soft
    if old_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, old_hard), min(hard, old_hard)
    resource.setrlimit(which, (soft, hard))
