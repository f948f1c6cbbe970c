# verdict: error
# expect: SIGSEGV
import ctypes


def run():
    return ctypes.c_int.from_address(8).value
