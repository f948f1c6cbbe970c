# verdict: failed
# expect: is not a stored program
"""Hands the engine a parent that does not exist, as if it had planted an elite with a made-up score."""
from rsi.improvers import Step


def start(ctx):
    ctx.state["fake"] = {"id": 10**6, "score": 1e9}


def next_step(ctx):
    return Step(parent=ctx.state["fake"]["id"])
