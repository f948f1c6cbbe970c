# verdict: error
# expect: mount refused
import ctypes


def run():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "mount refused")
    return [3, 1, 4, 1, 5]
