"""What isolates a candidate: set up once in a worker's zygote, completed in every child.

The zygote (``prepare`` before the evaluator is imported, ``finish`` after) enters namespaces
(network, mount, IPC, UTS; a user namespace for an ordinary user), mounts a size-capped tmpfs
over its scratch folder, opens the Landlock rule paths and builds the seccomp program, so that
a child pays only for a few system calls (``enter``), in this order:

1. identity: as root, change to an unprivileged uid of its own (``UID_BASE`` + the worker's
   pid, no capabilities but, where the files it needs are not world-readable, the capability to
   read them, which Landlock narrows); as an ordinary user, drop every capability held in the
   user namespace;
2. PR_SET_NO_NEW_PRIVS; the parent-death signal again (a uid change clears it);
3. Landlock: read system, Python and (where allowed) evaluator folders; write the task folder;
   no TCP; signals and abstract sockets only inside the domain;
4. seccomp (``seccomp.py``).

Where a mechanism is missing, the next one covers what it can (read-only mounts for Landlock,
the seccomp socket filter and Landlock's TCP rules for the network namespace) and ``report``
says what is and is not in force. ``RSI_SANDBOX_DISABLE`` (comma-separated: net, mount, user,
uid, landlock, seccomp, tmpfs) turns mechanisms off, to see what remains.
"""

from __future__ import annotations

import ctypes
import os
import stat
import struct
import sys
import sysconfig
from typing import Any

from . import landlock, namespaces, seccomp

UID_BASE = 2_000_000_000  # + the worker's pid: a uid no one else has, per worker
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
CAP_DAC_READ_SEARCH = 2
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}

SYSTEM_READ = [
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache",
    "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone", "/etc/passwd",
    "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf",
    "/etc/protocols", "/etc/services", "/etc/mime.types", "/etc/ssl/certs", "/etc/os-release",
    "/etc/alternatives", "/proc/cpuinfo", "/proc/meminfo", "/sys/devices/system/cpu",
]
DEVICES = [("/dev/null", landlock.DEVICE), ("/dev/zero", landlock.DEVICE),
           ("/dev/full", landlock.DEVICE), ("/dev/random", landlock.READ_FILE),
           ("/dev/urandom", landlock.READ_FILE)]
TASK_RIGHTS = landlock.EVERYTHING & ~(landlock.EXECUTE | landlock.MAKE_CHAR | landlock.MAKE_BLOCK)
MECHANISMS = ("net", "mount", "user", "uid", "landlock", "seccomp", "tmpfs", "pid", "cgroup")


def disabled_mechanisms() -> set[str]:
    raw = os.environ.get("RSI_SANDBOX_DISABLE", "")
    names = {n.strip() for n in raw.split(",") if n.strip()}
    if "all" in names:
        return set(MECHANISMS)
    return names & set(MECHANISMS)


class Plan:
    """The zygote's isolation, inherited by every child it forks."""

    def __init__(self) -> None:
        self.enabled = False
        self.namespaces: set[str] = set()
        self.uid: int | None = None  # root: the uid children change to
        self.read_search = False  # root: children keep CAP_DAC_READ_SEARCH
        self.drop_caps = False  # user namespace: children drop its capabilities
        self.landlock_abi = 0
        self.seccomp_program: bytes | None = None
        self.filter: seccomp.Filter | None = None
        self.rulesets: dict[bool, landlock.Ruleset] = {}  # with the code folders or without
        self.base_rules: list[tuple[int, int]] = []
        self.code_rules: list[tuple[int, int]] = []
        self.code_kinds: set[str] = set()  # task kinds that may read the evaluator's folders
        self.code_folders: list[str] = []
        self.libc: ctypes.CDLL | None = None
        self.notes: dict[str, str] = {}  # why a mechanism is off, by mechanism
        self.protections: list[dict] = []

    @property
    def level(self) -> str:
        """ "full": network, file system, identity and system calls all isolated; "partial":
        some; "minimal": resource limits only; "none": isolation was turned off."""
        on = {p["name"] for p in self.protections if p["on"]}
        if not self.enabled:
            return "none"
        core = {"network", "filesystem", "identity", "syscalls"}
        return "full" if core <= on else "partial" if core & on else "minimal"


PLAN = Plan()


# ---------------------------------------------------------------- the zygote


def prepare(scratch: str, limits, enabled: bool, evaluator: str) -> Plan:
    """Once per worker, single-threaded, before the evaluator is imported."""
    plan = PLAN
    plan.libc = namespaces.libc()
    plan.enabled = enabled
    if not enabled:
        plan.notes["all"] = "isolation='none' was asked for"
        plan.protections = _describe(plan, limits, tmpfs=False)
        return plan
    off = disabled_mechanisms()
    for name in off:
        plan.notes[name] = "disabled by RSI_SANDBOX_DISABLE"
    plan.landlock_abi = 0 if "landlock" in off else landlock.abi_version()
    if not plan.landlock_abi and "landlock" not in off:
        plan.notes["landlock"] = ("the kernel has no Landlock (Linux 5.13+, "
                                  "CONFIG_SECURITY_LANDLOCK, landlock in lsm=)")
    root = os.geteuid() == 0
    if root and "uid" not in off:
        plan.uid = UID_BASE + (namespaces.OUTER_PID or os.getpid())  # in a PID namespace, getpid() is 1
        needed = _python_folders() + [os.path.dirname(os.path.abspath(evaluator))]
        hidden = [p for p in needed if not _world_accessible(p)]
        if not _world_accessible(scratch, search_only=True):
            hidden.append(scratch)
        plan.read_search = bool(hidden) and bool(plan.landlock_abi)
        if hidden and plan.landlock_abi:
            plan.notes["uid"] = (f"because {hidden[0]} is not world-readable; what it may "
                                 "read is still limited by Landlock")
        elif hidden:
            plan.notes["uid"] = (f"{hidden[0]} is not world-readable, so candidates may fail to "
                                 "import modules from it (without Landlock, reading "
                                 "everything is not an option)")
    elif root:
        plan.notes["uid"] = "disabled by RSI_SANDBOX_DISABLE"
    user_ns = not root and "user" not in off
    entered, why = namespaces.unshare_worker(user_ns, off)
    if why:
        for name in ("net", "mount", "user"):
            if name not in entered and name not in off:
                plan.notes[name] = why
    if not user_ns and not root and "user" not in off:
        plan.notes["user"] = "not needed"
    plan.namespaces = entered
    plan.drop_caps = "user" in entered
    tmpfs = False
    if "mount" in entered:
        try:
            namespaces.make_private()
            if "tmpfs" not in off:
                namespaces.scratch_tmpfs(scratch, limits.scratch_bytes)
                tmpfs = True
        except OSError as exc:
            plan.notes["tmpfs"] = str(exc)
    elif "tmpfs" not in off:
        plan.notes["tmpfs"] = "no mount namespace"
    if not plan.landlock_abi and "mount" in entered:
        failed = namespaces.read_only_mounts(scratch)
        plan.notes["ro-mounts"] = ("read-only except " + ", ".join(failed)) if failed else ""
    if "seccomp" in off:
        pass
    elif not seccomp.supported():
        plan.notes["seccomp"] = f"no system call table for {os.uname().machine}"
    else:
        plan.seccomp_program = seccomp.build(allow_inet="net" in entered)
    plan.protections = _describe(plan, limits, tmpfs)
    return plan


def finish(plan: Plan, evaluator: str, new_files: list[str], code_kinds: set[str]) -> None:
    """After the evaluator is imported: the Landlock rules (opened once, used by every child).
    ``new_files``: files of the modules the evaluator import loaded; their folders (outside
    the Python and system folders, and outside the rsi package unless the evaluator lives
    there) are the evaluator's *code folders*, readable, with all beneath them, by the task
    kinds in ``code_kinds``."""
    if plan.enabled and plan.seccomp_program is not None:
        plan.filter = seccomp.Filter(plan.seccomp_program, plan.libc)
    if not plan.enabled or not plan.landlock_abi:
        return
    own = os.path.dirname(os.path.realpath(evaluator))
    engine = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the rsi package
    granted = _granted_folders(engine)
    plan.base_rules = landlock.open_rule_paths(
        [(p, landlock.READ) for p in granted] + DEVICES + _engine_files(engine))
    folders = [own]
    for path in new_files:
        folder = os.path.dirname(os.path.realpath(path))
        if folder in folders or any(_beneath(folder, g) for g in granted):
            continue
        if _beneath(folder, engine) and not _problem_folder(folder):
            continue  # rsi's own code: its files are granted one by one, below
        folders.append(folder)
    plan.code_folders = folders
    plan.code_rules = landlock.open_rule_paths([(f, landlock.READ) for f in folders])
    plan.code_kinds = code_kinds
    for code in (False, True):
        rules = plan.base_rules + (plan.code_rules if code else [])
        plan.rulesets[code] = landlock.Ruleset(rules, plan.landlock_abi)


def task_owner(plan: Plan) -> int | None:
    """The uid (and gid) a task folder must belong to, or None."""
    return plan.uid


# ---------------------------------------------------------------- the child


def enter(plan: Plan, folder: str | int, kind: str, parent: int) -> None:
    """In the evaluation child, before it is given a task and so before any untrusted code;
    ``folder`` (the only writable one, a path or an O_PATH descriptor, which this closes)
    becomes the task's folder by a rename. Raises if any step fails: the candidate then does
    not run."""
    own = [(folder, TASK_RIGHTS)] if isinstance(folder, int) else []
    try:
        if plan.enabled:
            _enter(plan, folder, kind, parent, own)
    finally:
        for fd, _ in plan.base_rules + plan.code_rules + own:
            try:
                os.close(fd)
            except OSError:
                pass  # closed already


def _enter(plan: Plan, folder: str | int, kind: str, parent: int, own: list) -> None:
    libc = plan.libc
    if plan.uid is not None:
        _become(plan, plan.uid, libc)
    elif plan.drop_caps:
        _capset(libc, ())
    _prctl(libc, PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")
    _prctl(libc, PR_SET_PDEATHSIG, 9, "pdeathsig")  # cleared by the uid change
    if os.getppid() != parent:
        os._exit(71)  # the worker died meanwhile
    if plan.landlock_abi:
        paths = [("/proc/self", landlock.READ)]
        if not isinstance(folder, int):
            paths.append((folder, TASK_RIGHTS))
        own += landlock.open_rule_paths(paths)
        plan.rulesets[kind in plan.code_kinds].restrict(own)
    if plan.filter is not None:
        plan.filter.install()


def settle(task_dir: str) -> None:
    """In the child, once it has its task: temporary files and the home go to its folder."""
    for name in ("HOME", "TMPDIR", "TMP", "TEMP"):
        os.environ[name] = task_dir
    tempfile: Any = sys.modules.get("tempfile")  # imported by the evaluator, if at all
    if tempfile is not None:
        tempfile.tempdir = task_dir


def _prctl(libc, option: int, value: int, what: str) -> None:
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl {what}: {os.strerror(err)}")


def _become(plan: Plan, uid: int, libc) -> None:
    """Root to ``uid`` (``plan.uid``): no groups, no capabilities (but CAP_DAC_READ_SEARCH if needed).
    The bounding set needs no trimming: with PR_SET_NO_NEW_PRIVS an exec gains no capability
    (file capabilities and set-uid bits are ignored, a uid 0 exec keeps what it had)."""
    keep = (CAP_DAC_READ_SEARCH,) if plan.read_search else ()
    if keep:
        _prctl(libc, PR_SET_KEEPCAPS, 1, "keepcaps")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if keep:
        _prctl(libc, PR_SET_KEEPCAPS, 0, "keepcaps")
        _capset(libc, keep)


def _capset(libc, caps: tuple[int, ...]) -> None:
    """Effective and permitted = ``caps``, inheritable = none (capset v3)."""
    low = sum(1 << c for c in caps if c < 32)
    high = sum(1 << (c - 32) for c in caps if c >= 32)
    header = ctypes.create_string_buffer(struct.pack("<Ii", 0x20080522, 0))
    data = ctypes.create_string_buffer(struct.pack("<6I", low, low, 0, high, high, 0))
    number = SYS_CAPSET.get(os.uname().machine)
    if number is None or libc.syscall(number, header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


# ---------------------------------------------------------------- paths


def _python_folders() -> list[str]:
    folders = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    paths = sysconfig.get_paths()
    folders += [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths]
    try:
        import site

        folders += site.getsitepackages()
    except (ImportError, AttributeError):
        pass
    out = []
    for folder in folders:
        if folder and os.path.isdir(folder) and folder not in out:
            out.append(folder)
    return out


def _all_but(folder: str, hole: str) -> list[str]:
    """What granting ``folder`` but not ``hole`` (beneath it) takes: the siblings of every
    folder on the way down (rsi installed in site-packages keeps its meta-suite hidden)."""
    out = []
    while folder != hole:
        step = os.path.join(folder, os.path.relpath(hole, folder).split(os.sep)[0])
        try:
            out += [os.path.join(folder, n) for n in os.listdir(folder)
                    if os.path.join(folder, n) != step]
        except OSError:
            pass
        folder = step
    return out


def _problem_folder(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, "evaluate.py"))


def _engine_files(engine: str) -> list[tuple[str, int]]:
    """rsi's own modules, readable by every candidate (a lazy import inside an evaluator must
    work): every folder of the package that holds no problem folder, and the modules beside
    the problem folders (the meta-suite's, held-out ones included), which stay unreadable but
    where a rule grants one. Folder names may be listed."""
    rules = [(engine, landlock.READ_DIR)]
    holders = set()  # folders with a problem folder somewhere beneath
    for root, dirs, _ in os.walk(engine):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if _problem_folder(root):
            dirs[:] = []
            path = os.path.dirname(root)
            while _beneath(path, engine) and path not in holders:
                holders.add(path)
                path = os.path.dirname(path)
    for root, dirs, files in os.walk(engine):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if root not in holders:
            dirs[:] = []
            if not _problem_folder(root):
                rules.append((root, landlock.READ))
            continue
        rules += [(os.path.join(root, f), landlock.READ_FILE) for f in files if f.endswith(".py")]
    return rules


def code_read_rules(engine: str) -> list[tuple[str, int]]:
    """What confined code may read: the system and Python folders and rsi's own modules (``engine``,
    the rsi package folder), without the problem folders inside rsi: the rules a candidate gets."""
    return [(p, landlock.READ) for p in _granted_folders(engine)] + _engine_files(engine)


def _granted_folders(engine: str) -> list[str]:
    """The system and Python folders, with rsi's package folder cut out of any that holds it."""
    granted: list[str] = []
    for path in SYSTEM_READ + _python_folders():
        path = os.path.realpath(path)
        granted += _all_but(path, engine) if _beneath(engine, path) else [path]
    return granted


def _beneath(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _world_accessible(path: str, search_only: bool = False) -> bool:
    """Whether an unprivileged uid may reach ``path`` (search every ancestor) and list it."""
    path = os.path.realpath(path)
    try:
        st = os.stat(path)
    except OSError:
        return True  # nothing to read there
    want = 0o001 if search_only else 0o005
    if stat.S_ISDIR(st.st_mode) and st.st_mode & want != want:
        return False
    parent = os.path.dirname(path)
    while parent != path:
        path, parent = parent, os.path.dirname(parent)
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- the report


def _describe(plan: Plan, limits, tmpfs: bool) -> list[dict]:
    """What is in force, one entry per protection: {name, on, detail}."""
    notes, ns = plan.notes, plan.namespaces
    out = []

    def add(name: str, on: bool, detail: str) -> None:
        out.append({"name": name, "on": bool(on), "detail": detail})

    if not plan.enabled:
        add("isolation", False, "disabled (isolation='none'): only resource limits apply")
    abi = plan.landlock_abi
    if "net" in ns:
        add("network", True, "own network namespace: only a loopback, which is down")
    elif plan.enabled and (abi >= 4 or plan.seccomp_program):
        add("network", False, "no network namespace (" + notes.get("net", "?") + "); TCP connect "
            "and bind are denied by " + ("Landlock, " if abi >= 4 else "")
            + ("and every socket family by seccomp" if plan.seccomp_program else "nothing else"))
    else:
        add("network", False, notes.get("net", "not isolated"))
    if abi:
        add("filesystem", True, f"Landlock ABI {abi}: read system and Python folders (and the "
            "evaluator's folders where the evaluator runs beside the candidate, or for held-out "
            "runs), write the task folder only; no execution from it")
    elif "ro-mounts" in notes:
        add("filesystem", False, "no Landlock, so writes only are stopped: every mount is "
            "read-only but the scratch tmpfs (mount namespace); reading is not limited "
            "(" + notes.get("landlock", "") + ")"
            + (f"; {notes['ro-mounts']}" if notes["ro-mounts"] else ""))
    else:
        add("filesystem", False, "not isolated: " + notes.get("landlock", "isolation is off"))
    if plan.uid is not None:
        extra = " and CAP_DAC_READ_SEARCH" if plan.read_search else ", no capabilities"
        add("identity", True, f"own uid {UID_BASE}+worker pid{extra}"
            + (f" ({notes['uid']})" if "uid" in notes and plan.read_search else ""))
    elif plan.drop_caps:
        add("identity", True, "user namespace mapping the user to itself; no capabilities")
    else:
        add("identity", False, "runs as the user running rsi: " + (
            notes.get("user") or notes.get("uid") or "isolation is off"))
    if plan.seccomp_program:
        add("syscalls", True, "seccomp filter: ptrace, mount, namespaces, bpf, kexec, modules, "
            "io_uring, keyrings, non-IP sockets and more fail")
    else:
        add("syscalls", False, notes.get("seccomp", "isolation is off"))
    ipc = "landlock" if abi >= 6 else None
    if ipc:
        add("processes", True, "signals and ptrace reach no process outside the candidate's own "
            "(Landlock scope); the whole tree is killed after each task (process group + subreaper)")
    else:
        add("processes", plan.uid is not None, "the whole tree is killed after each task (process "
            "group + subreaper); " + ("signals limited by the uid" if plan.uid is not None else
                                      "signals to the user's other processes are not blocked"))
    entered, why = namespaces.PID_NAMESPACE
    add("pid namespace", entered, "the worker is init of a PID namespace of its own (its own /proc): candidates "
        "see no other process, and every process left in it dies with the worker" if entered else why)
    nproc = plan.uid is not None or "user" in ns
    add("process count", nproc, f"RLIMIT_NPROC {limits.processes} "
        + ("per worker" if nproc else "shared by all the user's processes" if os.geteuid()
           else "not enforced for root"))
    add("scratch quota", tmpfs, f"tmpfs of {limits.scratch_bytes // 2**20} MiB per worker"
        if tmpfs else "none (" + notes.get("tmpfs", "isolation is off")
        + "): only RLIMIT_FSIZE per file")
    add("resources", True, "RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE, no core dumps; "
        "wall timeout")
    add("environment", True, "only an allow-list of variables reaches workers (no secrets)")
    return out
