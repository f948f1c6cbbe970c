"""A seccomp filter, written as classic BPF by hand: system calls no candidate needs fail.

Denied with EPERM: debugging other processes (ptrace, process_vm_readv/writev, pidfd_getfd,
kcmp, process_madvise), mounting and namespaces (mount, umount2, pivot_root, chroot, the new
mount API, unshare, setns, clone/clone3 with namespace flags), kernel modules, kexec, bpf,
perf_event_open, keyrings, userfaultfd, io_uring (its operations bypass this filter), clock and
host settings, swap, reboot, quotas, accounting, open_by_handle_at; changing owners, modes and
extended attributes (Landlock does not cover them: an ordinary user's candidate could otherwise
chmod the evaluator it owns); ``kill(-1, ...)`` (every process the caller may signal). ``clone3``
fails with ENOSYS, so that the C library falls back to ``clone``, whose flags a filter can see.
``socket`` is allowed for AF_INET and AF_INET6 only when the candidate has its own network
namespace (where they reach nothing), else for no family at all; other families (AF_UNIX,
AF_NETLINK, AF_VSOCK, AF_PACKET...) fail with EAFNOSUPPORT, so a candidate cannot reach a unix
socket on the host (``socketpair`` still works).

Another architecture's system calls (i386 on x86_64) kill the process; x32 calls fail.
Supported: x86_64 and aarch64.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

# BPF opcodes
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16  # struct seccomp_data; args are little-endian u64

CLONE_NEW_FLAGS = 0x7E020000  # NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET
AF_INET, AF_INET6 = 2, 10

_DENIED = (
    "ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp process_madvise "
    "mount umount2 pivot_root chroot open_tree move_mount fsopen fsconfig fsmount fspick "
    "mount_setattr unshare setns init_module finit_module delete_module kexec_load "
    "kexec_file_load bpf perf_event_open keyctl add_key request_key userfaultfd "
    "io_uring_setup io_uring_enter io_uring_register settimeofday clock_settime clock_adjtime "
    "adjtimex sethostname setdomainname swapon swapoff reboot quotactl acct syslog vhangup "
    "lookup_dcookie open_by_handle_at name_to_handle_at fanotify_init "
    "fchmod fchmodat fchmodat2 fchown fchownat setxattr lsetxattr fsetxattr removexattr "
    "lremovexattr fremovexattr setxattrat removexattrat"
).split()
_LEGACY = "iopl ioperm chmod chown lchown".split()  # x86_64 only

TABLES = {
    "x86_64": (0xC000003E, {
        "socket": 41, "clone": 56, "kill": 62, "ptrace": 101, "syslog": 103, "vhangup": 153,
        "pivot_root": 155, "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164,
        "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169,
        "sethostname": 170, "setdomainname": 171, "iopl": 172, "ioperm": 173,
        "init_module": 175, "delete_module": 176, "quotactl": 179, "lookup_dcookie": 212,
        "clock_settime": 227, "kexec_load": 246, "add_key": 248, "request_key": 249,
        "keyctl": 250, "unshare": 272, "perf_event_open": 298, "fanotify_init": 300,
        "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
        "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
        "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
        "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
        "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94, "setxattr": 188,
        "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
        "fremovexattr": 199, "fchownat": 260, "fchmodat": 268, "fchmodat2": 452,
        "setxattrat": 463, "removexattrat": 466,
    }),
    "aarch64": (0xC00000B7, {
        "lookup_dcookie": 18, "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51,
        "vhangup": 58, "quotactl": 60, "acct": 89, "unshare": 97, "kexec_load": 104,
        "init_module": 105, "delete_module": 106, "clock_settime": 112, "syslog": 116,
        "ptrace": 117, "kill": 129, "reboot": 142, "sethostname": 161, "setdomainname": 162,
        "settimeofday": 170, "adjtimex": 171, "socket": 198, "add_key": 217,
        "request_key": 218, "keyctl": 219, "clone": 220, "swapon": 224, "swapoff": 225,
        "perf_event_open": 241, "fanotify_init": 262, "name_to_handle_at": 264,
        "open_by_handle_at": 265, "clock_adjtime": 266, "setns": 268, "process_vm_readv": 270,
        "process_vm_writev": 271, "kcmp": 272, "finit_module": 273, "bpf": 280,
        "userfaultfd": 282, "kexec_file_load": 294, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
        "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
        "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14, "lremovexattr": 15,
        "fremovexattr": 16, "fchmod": 52, "fchmodat": 53, "fchownat": 54, "fchown": 55,
        "fchmodat2": 452, "setxattrat": 463, "removexattrat": 466,
    }),
}

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def supported() -> bool:
    return platform.machine() in TABLES


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def build(allow_inet: bool) -> bytes:
    """The filter program (struct sock_filter[]) for this machine's architecture."""
    arch_id, table = TABLES[platform.machine()]
    eperm = RET_ERRNO | errno.EPERM
    prog = [
        _insn(LD_W_ABS, OFF_ARCH),
        _insn(JEQ_K, arch_id, jt=1),
        _insn(RET_K, RET_KILL_PROCESS),
        _insn(LD_W_ABS, OFF_NR),
    ]
    if arch_id == 0xC000003E:  # x32 system calls have bit 30 set
        prog += [_insn(JGE_K, 0x40000000, jf=1), _insn(RET_K, eperm)]
    for name in _DENIED + [n for n in _LEGACY if n in table]:
        prog += [_insn(JEQ_K, table[name], jf=1), _insn(RET_K, eperm)]
    prog += [_insn(JEQ_K, table["clone3"], jf=1), _insn(RET_K, RET_ERRNO | errno.ENOSYS)]
    # clone: deny namespace flags. Loads clobber the accumulator, so each argument check ends
    # in a return.
    prog += [
        _insn(JEQ_K, table["clone"], jf=4),
        _insn(LD_W_ABS, OFF_ARG0),
        _insn(JSET_K, CLONE_NEW_FLAGS, jf=1),
        _insn(RET_K, eperm),
        _insn(RET_K, RET_ALLOW),
    ]
    prog += [  # kill(-1, sig): every process the caller may signal
        _insn(JEQ_K, table["kill"], jf=4),
        _insn(LD_W_ABS, OFF_ARG0),
        _insn(JEQ_K, 0xFFFFFFFF, jf=1),
        _insn(RET_K, eperm),
        _insn(RET_K, RET_ALLOW),
    ]
    no_family = RET_ERRNO | errno.EAFNOSUPPORT
    if allow_inet:
        prog += [
            _insn(JEQ_K, table["socket"], jf=5),
            _insn(LD_W_ABS, OFF_ARG0),
            _insn(JEQ_K, AF_INET, jt=1),
            _insn(JEQ_K, AF_INET6, jf=1),
            _insn(RET_K, RET_ALLOW),
            _insn(RET_K, no_family),
        ]
    else:
        prog += [_insn(JEQ_K, table["socket"], jf=1), _insn(RET_K, no_family)]
    prog.append(_insn(RET_K, RET_ALLOW))
    return b"".join(prog)


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Filter:
    """A filter program ready to load, made once (in the zygote): ``install`` in each child."""

    def __init__(self, program: bytes, libc) -> None:
        self.buffer = ctypes.create_string_buffer(program, len(program))
        self.fprog = _Fprog(len(program) // 8, ctypes.addressof(self.buffer))
        self.ref = ctypes.byref(self.fprog)
        self.libc = libc

    def install(self) -> None:
        """Load the filter on this process (PR_SET_NO_NEW_PRIVS must be set); OSError if refused."""
        if self.libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self.ref, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp filter refused: {os.strerror(err)}")


def install(program: bytes, libc) -> None:
    """Load ``program`` on this process (PR_SET_NO_NEW_PRIVS must be set); OSError if refused."""
    Filter(program, libc).install()
