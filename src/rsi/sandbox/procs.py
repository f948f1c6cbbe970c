"""Process and file helpers for the worker: killing process trees, listing children, scratch files."""

from __future__ import annotations

import functools
import os
import select
import signal
import sys
import time
from collections.abc import Callable


def load_module(path: str):
    import importlib.util

    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the evaluator can import its neighbours
    spec = importlib.util.spec_from_file_location("rsi_evaluator", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rsi_evaluator"] = module
    spec.loader.exec_module(module)
    return module


def output_file(folder: str) -> int:
    """An unnamed file in ``folder`` (a named one, unlinked at once, where O_TMPFILE fails)."""
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):
        import tempfile

        fd, path = tempfile.mkstemp(dir=folder)
        os.unlink(path)
        return fd


def kill_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid``, or the process alone if it never made one."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def read_child(fd: int, wall_seconds: float, cap: int, kill: Callable[[], None],
               started: float | None = None) -> tuple[bytes, str]:
    """Everything a child writes on ``fd`` until it closes it: ``(data, "done")``; at ``wall_seconds``
    (from ``started``) ``kill()`` and ``(b"", "timeout")``; past ``cap`` bytes ``kill()`` and
    ``(the first bytes, "too big")``. Closes ``fd``."""
    started = time.monotonic() if started is None else started
    chunks: list[bytes] = []
    size = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    try:
        while True:
            left = wall_seconds - (time.monotonic() - started)
            if left <= 0:
                kill()
                return b"", "timeout"
            if not poller.poll(int(left * 1000) + 1):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks), "done"
            size += len(chunk)
            chunks.append(chunk)
            if size > cap:
                kill()
                return b"".join(chunks), "too big"
    finally:
        os.close(fd)


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads)."""
    pids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            fd = os.open(f"/proc/{pid}/task/{tid}/children", os.O_RDONLY)
            try:
                text = b"".join(iter(functools.partial(os.read, fd, 1 << 16), b""))
            finally:
                os.close(fd)
            pids.extend(int(p) for p in text.split())
    except FileNotFoundError:  # no CONFIG_PROC_CHILDREN: scan every process's parent
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry))
    return pids


def sweep(parent: int, pgid: int, keep: set[int]) -> None:
    """Kill and reap everything a task left behind: its process group ``pgid``, and any
    process that escaped the group (orphans are reparented to ``parent``, this process, a child
    subreaper) but those in ``keep``."""
    kill_group(pgid)
    for _ in range(10_000):
        pids = [p for p in children(parent) if p not in keep]
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in pids:
            try:
                os.waitpid(p, 0)
            except ChildProcessError:
                pass


def remove_tree(path: str) -> None:
    import shutil

    def retry(func, failed, _exc):  # a candidate may have made its files read-only
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            os.chmod(failed, 0o700)
            func(failed)
        except OSError:
            pass

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=retry)


def vm_size_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
