# verdict: error
# expect: SIGSEGV|RecursionError|MemoryError
# why: C-level recursion without a recursion limit overflows the stack: the process dies
import sys


def down(n):
    return sum(map(down, [n + 1]))


def run():
    sys.setrecursionlimit(10**8)
    return down(0)
