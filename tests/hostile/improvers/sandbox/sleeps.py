# verdict: failed
# expect: did not answer next_step
"""Sleeps past its time limit (and ignores the signals a polite timeout would send)."""
import signal
import time

from rsi.improvers import Step


def next_step(ctx):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)
    if ctx.evaluations >= 2:
        time.sleep(10_000)
    return Step(parent=ctx.archive.best().id)
