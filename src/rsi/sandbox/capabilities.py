"""What this machine offers for isolating candidates, found without starting a worker.

    capabilities()   the facts: kernel, Landlock ABI, namespaces, seccomp, bubblewrap...
    sandbox_level()  the level a pool started now should reach: "full", "partial", "minimal"

A pool reports what it actually reached (``EvaluatorPool.sandbox``); ``doctor.py`` starts one
and checks it with a probe candidate.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys

from . import landlock, namespaces, seccomp

LANDLOCK_FEATURES = {1: "files", 2: "file renames across folders", 3: "truncation",
                     4: "TCP bind/connect", 5: "device ioctls",
                     6: "signals and abstract unix sockets", 7: "audit logging"}


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _try_unshare(flags: int) -> str | None:
    """None if a forked child may ``unshare(flags)``, else why not."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child only makes system calls and exits
        os.close(read_fd)
        try:
            namespaces.unshare(flags)
            os.write(write_fd, b"ok")
        except OSError as exc:
            os.write(write_fd, (exc.strerror or str(exc)).encode()[:200])
        os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 256).decode(errors="replace")
    os.close(read_fd)
    os.waitpid(pid, 0)
    return None if answer == "ok" else answer or "the probe died"


def capabilities() -> dict:
    """The isolation mechanisms of this machine and process, and why any is missing."""
    root = os.geteuid() == 0
    abi = landlock.abi_version()
    caps: dict = {
        "kernel": platform.release(), "arch": platform.machine(), "python": sys.version.split()[0],
        "uid": os.geteuid(), "root": root, "landlock_abi": abi,
        "landlock_features": [LANDLOCK_FEATURES[i] for i in sorted(LANDLOCK_FEATURES) if i <= abi],
        "seccomp": seccomp.supported() and _read("/proc/self/status") is not None
        and "Seccomp:" in (_read("/proc/self/status") or ""),
        "bubblewrap": shutil.which("bwrap"),
        "ptrace_scope": _read("/proc/sys/kernel/yama/ptrace_scope"),
        "sysctl": {name: _read(path) for name, path in (
            ("kernel.unprivileged_userns_clone", "/proc/sys/kernel/unprivileged_userns_clone"),
            ("user.max_user_namespaces", "/proc/sys/user/max_user_namespaces"),
            ("kernel.apparmor_restrict_unprivileged_userns",
             "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        ) if _read(path) is not None},
    }
    base = namespaces.CLONE_NEWNET | namespaces.CLONE_NEWNS
    caps["namespaces_error"] = _try_unshare(base if root else base | namespaces.CLONE_NEWUSER)
    caps["user_namespaces_error"] = (caps["namespaces_error"] if not root
                                     else _try_unshare(namespaces.CLONE_NEWUSER))
    caps["level"] = _predict(caps)
    return caps


def _predict(caps: dict) -> str:
    core = [caps["namespaces_error"] is None, caps["landlock_abi"] > 0,
            caps["root"] or caps["namespaces_error"] is None, bool(caps["seccomp"])]
    return "full" if all(core) else "partial" if any(core) else "minimal"


def sandbox_level() -> str:
    """The isolation level an ``EvaluatorPool(isolation="full")`` started now should reach."""
    return capabilities()["level"]
