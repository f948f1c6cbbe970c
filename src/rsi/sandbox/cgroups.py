"""Limits per process tree: a cgroup for each worker (and each improver host).

RLIMIT_AS and RLIMIT_CPU hold per process; a candidate that forks gets them again in every
child. A cgroup holds the whole tree: ``memory`` (memory.max, or v1 memory.limit_in_bytes: the
tree's resident memory; past it the kernel's OOM killer kills inside the tree only),
``pids`` (pids.max: processes and threads of the tree together, so a fork bomb stops there) and
``cpu`` (cpu.max, or v1 cpu.cfs_quota_us: the tree's share of the CPUs).

Where: cgroup v2 when the controllers are available to rsi's own cgroup (it is the root of the
hierarchy, as in many containers run as root, or its ``cgroup.subtree_control`` already enables
them: a delegated subtree prepared for rsi); else the v1 hierarchies of a hybrid set-up where
rsi may create groups (root). Each tree is a child group of rsi's own group
(``rsi-<engine pid>-<name>``), removed when the tree ends (and, empty ones left by an engine
that was killed, by the next rsi process that makes a tree: ``sweep_stale``). ``support()`` says which, or why
neither (``rsi doctor`` prints it); without them, the per-process limits remain, with a warning.
``RSI_SANDBOX_DISABLE=cgroup`` turns them off.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field

CONTROLLERS = ("memory", "pids", "cpu")
PERIOD_US = 100_000


@dataclass
class Support:
    """Whether trees can be limited here: ``mode`` "v2", "v1" or None (then ``why``)."""

    mode: str | None
    parents: dict[str, str] = field(default_factory=dict)  # controller -> folder new groups go in
    why: str = ""

    @property
    def available(self) -> bool:
        return self.mode is not None

    def describe(self) -> str:
        if self.mode is None:
            return f"no cgroup limits per process tree: {self.why}"
        where = sorted(set(self.parents.values()))
        return (f"cgroup {self.mode}: memory, processes and CPU limited per worker tree "
                f"(groups under {', '.join(where)})")


_SUPPORT: Support | None = None


def support(refresh: bool = False) -> Support:
    global _SUPPORT
    if _SUPPORT is None or refresh:
        _SUPPORT = _detect()
    return _SUPPORT


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, fs type, super options) of every cgroup mount."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if len(fields) > 4 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                    out.append((fields[4].replace("\\040", " "), tail[0], tail[2].split(",")))
    except OSError:
        pass
    return out


def _own_paths() -> dict[str, str]:
    """This process's cgroup per controller ("" key: the v2 hierarchy)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                for name in (names.split(",") if names else [""]):
                    out[name] = path
    except (OSError, ValueError):
        pass
    return out


def _writable(folder: str) -> bool:
    return os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)


def _detect() -> Support:
    if "cgroup" in {n.strip() for n in os.environ.get("RSI_SANDBOX_DISABLE", "").split(",")}:
        return Support(None, why="disabled by RSI_SANDBOX_DISABLE")
    mounts, own = _mounts(), _own_paths()
    reasons = []
    for point, kind, _ in mounts:
        if kind != "cgroup2" or "" not in own:
            continue
        folder = os.path.normpath(point + own[""])
        try:
            with open(os.path.join(folder, "cgroup.controllers")) as f:
                available = set(f.read().split())
            with open(os.path.join(folder, "cgroup.subtree_control")) as f:
                enabled = set(f.read().split())
        except OSError as exc:
            reasons.append(f"cgroup v2 at {folder}: {exc.strerror}")
            continue
        missing = [c for c in CONTROLLERS if c not in available]
        if missing:
            reasons.append(f"cgroup v2 at {folder} has no {', '.join(missing)} controller")
            continue
        if not _writable(folder):
            reasons.append(f"cgroup v2 at {folder} is not writable by this user (not delegated)")
            continue
        if not set(CONTROLLERS) <= enabled:
            try:  # allowed at the root of a hierarchy (or of a cgroup namespace), refused elsewhere
                with open(os.path.join(folder, "cgroup.subtree_control"), "w") as f:
                    f.write(" ".join("+" + c for c in CONTROLLERS))
            except OSError as exc:
                reasons.append(f"cgroup v2 at {folder}: cannot enable {', '.join(CONTROLLERS)} for its subtree "
                               f"({exc.strerror}; rsi's own group holds processes: start rsi in a delegated "
                               "subtree whose cgroup.subtree_control enables them)")
                continue
        return Support("v2", {c: folder for c in CONTROLLERS})
    parents: dict[str, str] = {}
    for point, kind, options in mounts:
        if kind != "cgroup":
            continue
        for controller in CONTROLLERS:
            if controller in options and controller in own and controller not in parents:
                folder = os.path.normpath(point + own[controller])
                if _writable(folder):
                    parents[controller] = folder
                else:
                    reasons.append(f"cgroup v1 {controller} at {folder} is not writable by this user")
    if set(CONTROLLERS) <= set(parents):
        return Support("v1", parents)
    if not mounts:
        reasons.append("no cgroup file system is mounted")
    elif parents:
        reasons.append(f"cgroup v1 lacks {', '.join(c for c in CONTROLLERS if c not in parents)}")
    return Support(None, why="; ".join(reasons) or "no usable cgroup hierarchy")


class Tree:
    """One process tree's group(s): ``add`` a process (its children follow), ``kill`` all,
    ``remove``; ``peak``/``events`` for reports and tests."""

    def __init__(self, support_: Support, name: str):
        self.mode = support_.mode
        self.folders: dict[str, str] = {}
        for controller, parent in support_.parents.items():
            folder = os.path.join(parent, f"rsi-{os.getpid()}-{name}")
            if folder not in self.folders.values():
                os.makedirs(folder, exist_ok=True)
            self.folders[controller] = folder

    def limit(self, memory_mb: int, processes: int, cpus: float) -> None:
        memory = str(int(memory_mb) << 20)
        quota = str(max(1000, int(cpus * PERIOD_US)))
        if self.mode == "v2":
            self._set("memory", "memory.max", memory)
            self._set("memory", "memory.swap.max", "0", optional=True)
            self._set("pids", "pids.max", str(processes))
            self._set("cpu", "cpu.max", f"{quota} {PERIOD_US}")
        else:
            self._set("memory", "memory.limit_in_bytes", memory)
            self._set("memory", "memory.memsw.limit_in_bytes", memory, optional=True)
            self._set("pids", "pids.max", str(processes))
            self._set("cpu", "cpu.cfs_period_us", str(PERIOD_US))
            self._set("cpu", "cpu.cfs_quota_us", quota)

    def _set(self, controller: str, name: str, value: str, optional: bool = False) -> None:
        try:
            with open(os.path.join(self.folders[controller], name), "w") as f:
                f.write(value)
        except OSError:
            if not optional:
                raise

    def add(self, pid: int) -> None:
        for folder in dict.fromkeys(self.folders.values()):
            with open(os.path.join(folder, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(self.folders["pids"], "cgroup.procs")) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL every process of the tree (v2: cgroup.kill; v1: until none is left)."""
        if self.mode == "v2":
            try:
                with open(os.path.join(self.folders["pids"], "cgroup.kill"), "w") as f:
                    f.write("1")
                return
            except OSError:
                pass
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Remove the group(s) once empty (their processes killed and reaped)."""
        for folder in dict.fromkeys(self.folders.values()):
            for _ in range(50):
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)

    def events(self) -> dict[str, int]:
        """What the limits stopped: {"oom_kill": n, "pids_max": n} (0 when unknown)."""
        out = {"oom_kill": 0, "pids_max": 0}
        for controller, name, key, target in (("memory", "memory.events", "oom_kill", "oom_kill"),
                                              ("pids", "pids.events", "max", "pids_max")):
            try:
                with open(os.path.join(self.folders[controller], name)) as f:
                    for line in f:
                        k, _, v = line.partition(" ")
                        if k == key:
                            out[target] = int(v)
            except (OSError, ValueError):
                pass
        if self.mode == "v1" and not out["oom_kill"]:
            try:
                with open(os.path.join(self.folders["memory"], "memory.oom_control")) as f:
                    for line in f:
                        k, _, v = line.partition(" ")
                        if k == "oom_kill":
                            out["oom_kill"] = int(v)
            except (OSError, ValueError):
                pass
        return out


_SWEPT = False


def sweep_stale(found: Support) -> list[str]:
    """Remove the empty groups left by rsi processes that are gone (killed with -9, say, they could
    not remove their own); the folders removed. A group still holding processes is kept."""
    removed = []
    for parent in dict.fromkeys(found.parents.values()):
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            parts = name.split("-")
            if len(parts) < 3 or parts[0] != "rsi" or not parts[1].isdigit():
                continue
            if int(parts[1]) == os.getpid() or os.path.exists(f"/proc/{parts[1]}"):
                continue  # its engine is alive (or its pid was reused: left alone)
            try:
                os.rmdir(os.path.join(parent, name))
                removed.append(os.path.join(parent, name))
            except OSError:
                pass  # not empty, or not ours to remove
    return removed


def joined(tree: Tree | None, pid: int) -> Tree | None:
    """``tree`` with ``pid`` in it; None (the group removed, a warning printed once) if the kernel
    refuses the move, so that a machine whose cgroups look usable but are not runs with per-process
    limits instead of failing."""
    global _WARNED
    if tree is None:
        return None
    try:
        tree.add(pid)
    except OSError as exc:
        tree.remove()
        if not _WARNED:
            _WARNED = True
            print(f"rsi: warning: cannot move a process into its cgroup ({exc.strerror}); running with "
                  "per-process limits only", file=sys.stderr)
        return None
    return tree


_WARNED = False


def tree_for(name: str, *, memory_mb: int, processes: int, cpus: float) -> Tree | None:
    """A limited tree named ``name`` where the machine allows one, else None."""
    global _SWEPT
    found = support()
    if not found.available:
        return None
    if not _SWEPT:
        _SWEPT = True
        sweep_stale(found)
    try:
        tree = Tree(found, name)
        tree.limit(memory_mb, processes, cpus)
    except OSError:
        return None
    return tree
