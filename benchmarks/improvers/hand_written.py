"""A hand-written improver: what a person designs for these searches in about an hour.

The baseline the issue asks for: the best policy written by hand, without self-improvement, to
show the ceiling a person reaches. It is a composed improver (``rsi.improvers.components``): the
SPEC below was chosen by looking at the training problems only (100-evaluation searches on
cheap programs with a handful of numeric constants), never the test problems:

- one pool (no islands): at 100 evaluations, splitting the effort across islands slows the climb;
- parents from a tournament of 4 among the elites, the global best a quarter of the time;
- every 30 evaluations, a CMA-ES move of 8 evaluations on the best program's float constants
  (most of these programs are heuristics with constants worth tuning together);
- more children of a parent while the search stagnates (burst);
- operators by the credit bandit, started from a memory when the run has one.
"""

from __future__ import annotations

from rsi.improvers import ImproverContext, Outcome, Step
from rsi.improvers.components import build

# EVOLVE-BLOCK-START
SPEC = {
    "islands": {"use": "single"},
    "parent": {
        "use": "seed_mix",
        "exploit": 0.65,
        "global_best": 0.25,
        "k": 4,
        "stagnation": 60,
        "stagnation_factor": 0.5,
    },
    "acceptance": {"use": "greedy"},
    "restart": {"use": "none"},
    "inspirations": {"use": "top", "count": 2},
    "operator": {
        "use": "bandit",
        "floor": 0.2,
        "decay": 0.99,
        "improved": 1.0,
        "new_best": 3.0,
        "tokens_per_evaluation": 40.0,
        "evaluations_per_dollar": 5000.0,
        "memory_weight": 20,
    },
    "children": {"use": "burst", "count": 1, "burst": 3, "patience": 30},
    "tuning": {"use": "cma", "every": 30, "children": 8, "target": "best"},
}
# EVOLVE-BLOCK-END

POLICY = build(SPEC)


def start(ctx: ImproverContext) -> None:
    POLICY.start(ctx)


def next_step(ctx: ImproverContext) -> Step:
    return POLICY.next_step(ctx)


def observe(ctx: ImproverContext, step: Step, outcome: Outcome) -> None:
    POLICY.observe(ctx, step, outcome)
