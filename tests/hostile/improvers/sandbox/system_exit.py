# verdict: failed
# expect: SystemExit
"""Raises SystemExit, which an `except Exception` would let through."""
import sys


def next_step(ctx):
    sys.exit(0)
