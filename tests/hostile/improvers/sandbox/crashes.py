# verdict: failed
# expect: SIGSEGV
"""Crashes the interpreter (a null pointer read through ctypes)."""
import ctypes


def next_step(ctx):
    ctypes.string_at(0)
