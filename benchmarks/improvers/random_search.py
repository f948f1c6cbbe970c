"""Baseline: random search over the same operators. No archive, no credit.

Each child mutates a uniformly chosen earlier valid program with a uniformly chosen operator.
"""

from rsi.improvers import Step


def next_step(ctx):
    parent_id, _ = ctx.rng.choice(ctx.population)
    proposer = sorted(ctx.operators)[0]
    return Step(parent=parent_id, proposer=proposer, operator=ctx.rng.choice(ctx.operators[proposer]))
