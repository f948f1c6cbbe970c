# verdict: error
# expect: unshare refused
import ctypes


def run():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare refused")
    return [3, 1, 4, 1, 5]
