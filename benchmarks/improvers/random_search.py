"""Baseline: random search over the same operators. No archive, no credit.

Each child mutates a uniformly chosen earlier valid program with an operator chosen uniformly
among every proposer's operators (with one proposer, the same draws as choosing among its own).
"""

from rsi.improvers import Step


def next_step(ctx):
    parent_id, _ = ctx.rng.choice(ctx.population)
    arms = [(proposer, op) for proposer in sorted(ctx.operators) for op in ctx.operators[proposer]]
    proposer, operator = ctx.rng.choice(arms)
    return Step(parent=parent_id, proposer=proposer, operator=operator)
