"""Namespaces and mounts for a worker's zygote, through raw system calls (ctypes).

Called once per worker, before the evaluator is imported, while the process has one thread:

- ``unshare_worker``: a network namespace (nothing but a down loopback), a mount namespace,
  IPC and UTS namespaces; for an ordinary user inside a new user namespace that maps the user to
  itself (root needs none: its children change to an unprivileged uid instead).
- ``scratch_tmpfs``: a size-capped tmpfs over the worker's scratch folder (mount namespace
  only): task folders and captured output live there, so filling the disk means filling a
  quota; it disappears with the worker.
- ``read_only_mounts``: every mount read-only but that tmpfs; the file system protection when
  Landlock is not available.
- ``pid_namespace``: first of all (``rsi.sandbox.worker.main``), a PID namespace of the worker's
  own, whose init the worker becomes: its candidates see and signal no process outside it, and
  when the worker dies the kernel kills every process left in it.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
_OPTION_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
                 "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME,
                 "strictatime": MS_STRICTATIME}

_libc = None
PID_NAMESPACE: tuple[bool, str] = (False, "not asked for")  # (entered, why not), set by pid_namespace
OUTER_PID: int | None = None  # the worker's pid outside its PID namespace


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(libc().unshare(flags), "unshare")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def unshare_worker(user_namespace: bool, disabled: set[str]) -> tuple[set[str], str]:
    """Enter new namespaces; (the ones entered, why the others were not).

    ``user_namespace``: also a user namespace, mapping this uid and gid to themselves (an
    ordinary user needs one for the others). Tries all, then without network (a kernel or
    container may forbid it), then nothing.
    """
    wanted = {"net": CLONE_NEWNET, "mount": CLONE_NEWNS, "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}
    for name in disabled & set(wanted):
        wanted.pop(name)
    if not wanted:
        return set(), "disabled by RSI_SANDBOX_DISABLE"
    uid, gid = os.geteuid(), os.getegid()
    reasons = []
    for attempt in (wanted, {k: v for k, v in wanted.items() if k != "net"}):
        if not attempt:
            continue
        flags = sum(attempt.values()) | (CLONE_NEWUSER if user_namespace else 0)
        try:
            unshare(flags)
        except OSError as exc:
            reasons.append(f"unshare({'+'.join(sorted(attempt))}"
                           f"{'+user' if user_namespace else ''}) failed: {exc.strerror}")
            continue
        if user_namespace:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        return set(attempt) | ({"user"} if user_namespace else set()), "; ".join(reasons)
    return set(), "; ".join(reasons)


def make_private() -> None:
    """Stop mount events from propagating back to the host's namespace."""
    _check(libc().mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")


def scratch_tmpfs(folder: str, size: int, inodes: int = 65536) -> None:
    opts = f"size={size},nr_inodes={inodes},mode=0711".encode()
    _check(libc().mount(b"rsi-scratch", folder.encode(), b"tmpfs",
                        MS_NOSUID | MS_NODEV | MS_NOEXEC, opts), f"mount tmpfs on {folder}")


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def read_only_mounts(keep_writable: str) -> list[str]:
    """Remount every mount read-only but ``keep_writable`` (and those under it); the mount
    points that could not be (reported, not fatal: /proc and such refuse in some set-ups)."""
    failed = []
    with open("/proc/self/mountinfo") as f:
        entries = [line.split() for line in f]
    for fields in entries:
        point, options = _unescape(fields[4]), fields[5].split(",")
        if point == keep_writable or point.startswith(keep_writable.rstrip("/") + "/"):
            continue
        if "ro" in options:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= _OPTION_FLAGS.get(option, 0)
        if libc().mount(None, point.encode(), None, flags, None) != 0:
            failed.append(point)
    return failed


def pid_namespace(disabled: set[str]) -> tuple[bool, str]:
    """Make the rest of this process run as init (pid 1) of a new PID namespace with its own
    /proc; (entered, why not). Must be called while single-threaded. The calling process forks: the
    child returns from here; the parent stays behind only to wait for it and exit as it did (so
    that whoever started the worker sees its exit), holding no descriptor.

    As root only: an ordinary user would need it inside the user namespace that ``unshare_worker``
    makes later (not done: such workers keep the host's PID namespace, and ``report`` says so)."""
    global PID_NAMESPACE, OUTER_PID
    if "pid" in disabled:
        PID_NAMESPACE = (False, "disabled by RSI_SANDBOX_DISABLE")
    elif os.geteuid() != 0:
        PID_NAMESPACE = (False, "only as root in this version (an ordinary user's workers share the PID namespace)")
    else:
        outer = os.getpid()
        try:
            unshare(CLONE_NEWPID | CLONE_NEWNS)
        except OSError as exc:
            PID_NAMESPACE = (False, f"unshare(pid) failed: {exc.strerror}")
            return PID_NAMESPACE
        pid = os.fork()
        if pid:
            _stand_by(pid)
        _check(libc().prctl(1, 9, 0, 0, 0), "prctl pdeathsig")  # the waiting parent killed: so is this
        make_private()
        _check(libc().mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
        OUTER_PID = outer
        PID_NAMESPACE = (True, "")
    return PID_NAMESPACE


def _stand_by(child: int) -> None:
    """The parent left outside the namespace: close everything, wait, end as the child ended."""
    import signal

    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except ChildProcessError:
            os._exit(70)
        except InterruptedError:
            continue
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            os._exit(128 + sig)
        os._exit(os.waitstatus_to_exitcode(status))
