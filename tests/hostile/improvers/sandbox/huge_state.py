# verdict: failed
# expect: more than
"""Grows its state past what one answer may carry."""
from rsi.improvers import Step


def next_step(ctx):
    ctx.state["blob"] = "x" * (40 << 20)
    return Step(parent=ctx.archive.best().id)
