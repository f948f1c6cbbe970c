"""Baseline: plain hill climbing. Always mutate the best program so far; uniform operators."""

from rsi.improvers import Step


def next_step(ctx):
    parent_id, _ = max(ctx.population, key=lambda item: (item[1], -item[0]))
    proposer = sorted(ctx.operators)[0]
    return Step(parent=parent_id, proposer=proposer, operator=ctx.rng.choice(ctx.operators[proposer]))
