# verdict: error
# expect: ptrace refused
import ctypes
import os


def run():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, os.getppid(), 0, 0) != 0:  # PTRACE_ATTACH the worker
        raise OSError(ctypes.get_errno(), "ptrace refused")
    return [3, 1, 4, 1, 5]
