"""The composed improver: a search policy assembled from rsi's component library.

Its only editable part is ``SPEC``: for each role of a search policy, which component plays it
and with what parameters (``rsi.improvers.components`` documents every role, component and
parameter, with its bounds). The functions below build the policy from ``SPEC`` once, at import,
and hand it the engine's calls; a ``SPEC`` that names an unknown role, component or parameter, or
a value of the wrong type or out of its bounds, is refused then, with a ``SpecError`` saying which
and what is allowed.

    islands       round_robin | single
    parent        seed_mix | tournament | fitness_proportional | best | uniform | novelty
    acceptance    greedy | annealing
    restart       none | stagnation
    inspirations  island_elites | global_elites | top | none
    operator      bandit | uniform | fixed
    children      fixed | burst
    tuning        none | cma

As shipped, ``SPEC`` is the seed improver (``rsi/improvers/seed.py``) in components: islands in
turn, parents from the seed's mixture of tournament, global best and any elite, two island elites
plus the global best as inspirations, operators by the credit bandit, one child a step. It draws
the same random numbers in the same order as the seed improver, so a search with the same seed
makes the same candidates. Self-improvement (``rsi self-improve --start composed``) edits it with
the ``grammar`` proposer (``rsi.meta.grammar``): switch a component, move a parameter within its
bounds, so that every child is a valid improver.
"""

from __future__ import annotations

from rsi.improvers import ImproverContext, Outcome, Step
from rsi.improvers.components import build

# EVOLVE-BLOCK-START
SPEC = {
    "islands": {"use": "round_robin"},
    "parent": {
        "use": "seed_mix",
        "exploit": 0.75,
        "global_best": 0.1,
        "k": 3,
        "stagnation": 150,
        "stagnation_factor": 0.5,
    },
    "acceptance": {"use": "greedy"},
    "restart": {"use": "none"},
    "inspirations": {"use": "island_elites", "count": 2, "add_best": True},
    "operator": {
        "use": "bandit",
        "floor": 0.2,
        "decay": 0.995,
        "improved": 1.0,
        "new_best": 3.0,
        "tokens_per_evaluation": 40.0,
        "evaluations_per_dollar": 5000.0,
        "memory_weight": 20,
    },
    "children": {"use": "fixed", "count": 1},
    "tuning": {"use": "none"},
}
# EVOLVE-BLOCK-END

POLICY = build(SPEC)


def start(ctx: ImproverContext) -> None:
    POLICY.start(ctx)


def next_step(ctx: ImproverContext) -> Step:
    return POLICY.next_step(ctx)


def observe(ctx: ImproverContext, step: Step, outcome: Outcome) -> None:
    POLICY.observe(ctx, step, outcome)
