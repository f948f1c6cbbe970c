# verdict: failed
# expect: MemoryError
"""Asks for far more memory than an improver is given (8 GiB at once, then 64 MiB at a time)."""
from rsi.improvers import Step


def next_step(ctx):
    hog = [bytearray(8 << 30)] + [bytearray(64 << 20) for _ in range(1000)]
    return Step(parent=len(hog))
