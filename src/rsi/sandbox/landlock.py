"""Landlock, through raw system calls (ctypes): the file system and network rules of a candidate.

Landlock (Linux 5.13+, an unprivileged LSM) lets a process give up access rights for itself and
everything it will start: once ``restrict_self`` has run, the process can only do what some rule
grants. rsi grants, per candidate:

- read (and execute) beneath the system and Python folders (and, where the evaluator must read
  its own files, the evaluator's code folders), and beneath the candidate's own ``/proc/<pid>``;
- everything beneath the candidate's task folder, and nothing else writable but ``/dev/null``;
- no TCP bind or connect at all (ABI 4+), no signals and no abstract unix sockets that reach
  outside its own domain (ABI 6+). ptrace of any process outside the domain is always denied.

Every access right the running kernel knows is *handled*, so what is not granted is denied.

    abi = abi_version()                     # 0: unavailable
    rules = open_rule_paths([(path, READ)])  # O_PATH file descriptors, opened in advance
    ruleset = Ruleset(rules, abi)           # once
    ruleset.restrict(extra_rules)           # in each child, after PR_SET_NO_NEW_PRIVS
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Sequence

SYS_CREATE_RULESET = 444  # the same number on every architecture
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
             5: (1 << 16) - 1}
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # rights a non-directory may hold

READ = EXECUTE | READ_FILE | READ_DIR
DEVICE = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV
EVERYTHING = (1 << 16) - 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = None


def _syscall():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc.syscall


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock {what}: {os.strerror(err)}")
    return result


def abi_version() -> int:
    """The Landlock ABI of the running kernel; 0 when it is not built in or not enabled."""
    try:
        result = _syscall()(SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(0, int(result))


def handled_fs(abi: int) -> int:
    return FS_BY_ABI.get(abi, FS_BY_ABI[5]) if abi > 0 else 0


def open_rule_paths(paths: list[tuple[str, int]]) -> list[tuple[int, int]]:
    """``(O_PATH fd, rights)`` for every path that exists; rights trimmed for non-directories.
    The caller owns the fds (they are inherited by forked children, which close them)."""
    rules = []
    seen = set()
    for path, rights in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, rights)
        if key in seen:
            os.close(fd)
            continue
        seen.add(key)
        if not stat.S_ISDIR(st.st_mode):
            rights &= FILE_ONLY
        rules.append((fd, rights))
    return rules


class Ruleset:
    """The arguments of the system calls that build a ruleset, made once (in the zygote), so
    that each child only makes the calls: ``restrict(abi, extra)``."""

    def __init__(self, rules: list[tuple[int, int]], abi: int, *, network: bool = True,
                 scope: bool = True) -> None:
        self.abi = abi
        self.fs = handled_fs(abi)
        self.attr = _RulesetAttr(self.fs, NET_BIND_TCP | NET_CONNECT_TCP if network and abi >= 4 else 0,
                                 SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if scope and abi >= 6 else 0)
        self.size = ctypes.c_size_t(8 if abi < 4 else 16 if abi < 6 else 24)
        kept = [(fd, rights & self.fs) for fd, rights in rules if rights & self.fs]
        self.rules = (_PathBeneath * len(kept))(*[_PathBeneath(r, fd) for fd, r in kept])
        self.refs = [ctypes.byref(rule) for rule in self.rules]
        self.zero = ctypes.c_uint32(0)
        self.syscall = _syscall()

    def restrict(self, extra: Sequence[tuple[int, int]] = ()) -> None:
        """Create the ruleset, add its rules and ``extra`` ones, enforce it on this process.
        PR_SET_NO_NEW_PRIVS must be set already (or the caller hold CAP_SYS_ADMIN)."""
        syscall, zero = self.syscall, self.zero
        ruleset = _check(syscall(SYS_CREATE_RULESET, ctypes.byref(self.attr), self.size, zero),
                         "create_ruleset")
        try:
            for ref in self.refs:
                if syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ref, zero) < 0:
                    _check(-1, "add_rule")
            for fd, rights in extra:
                rule = _PathBeneath(rights & self.fs, fd)
                _check(syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), zero),
                       "add_rule")
            _check(syscall(SYS_RESTRICT_SELF, ruleset, zero), "restrict_self")
        finally:
            os.close(ruleset)


def restrict(rules: list[tuple[int, int]], abi: int, *, network: bool = True,
             scope: bool = True) -> None:
    """Create a ruleset granting ``rules`` and nothing else, and enforce it on this process.

    PR_SET_NO_NEW_PRIVS must be set already (or the caller hold CAP_SYS_ADMIN). ``network``:
    also deny every TCP bind and connect (ABI 4+). ``scope``: also deny signals and abstract
    unix sockets to processes outside the domain (ABI 6+).
    """
    Ruleset(rules, abi, network=network, scope=scope).restrict()
