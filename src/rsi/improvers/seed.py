"""The seed improver: rsi's default search policy, and the starting point of self-improvement.

Read top to bottom; every decision the search makes is here.

- Islands take turns, so each evolves its own lineage; the archive migrates bests between them.
- Parent: mostly a tournament among the island's elites (exploit), sometimes any elite of the
  island's MAP-Elites grid (explore), sometimes the global best. The longer the search stagnates,
  the more it explores.
- Inspirations: a few other elites (other cells of the same island, plus the global best), which
  the proposer may use for crossover or to copy code from.
- Memory: given one (``ctx.memory``, what paid in earlier searches: ``rsi.memory``), the bandit
  starts from it, each remembered arm with ``memory_weight`` pseudo-tries at its old credit rate.
- Operator (and proposer): chosen by a credit bandit, where credit is improvement per unit of
  cost, so operators that pay are used more and the mix adapts as the search moves on. A child
  costs one evaluation, plus its model tokens and dollars converted to evaluations
  (``tokens_per_evaluation``, ``evaluations_per_dollar``). An arm's rate is its credit per
  evaluation spent (a child that cost ten evaluations counts as ten tries, so one failed model
  call outweighs the arm's optimistic prior at once), and choices are weighted by one over each
  arm's typical cost: a model call that takes ten evaluations' time gets a tenth of the tries, and
  must improve ten times as often to earn more, so mixing a slow model in does not lose to mutate
  alone. A choice still being written (``ctx.writing``: a model call under way) counts as a try
  that earned nothing until its outcome is known, so a slow first call is not chosen again and
  again meanwhile. Tokens, not measured seconds, so that a seed still gives the same run (and a
  run without a model is exactly as before).
"""

from __future__ import annotations

from rsi.improvers import ImproverContext, Outcome, Step
from rsi.memory import credit_rates
from rsi.proposers.bandit import CreditBandit

DEFAULTS = {
    "exploit": 0.75,  # share of parents picked by tournament among the island's elites
    "global_best": 0.10,  # share of parents that are the global best
    "tournament": 3,
    "inspirations": 2,
    "bandit_floor": 0.2,
    "bandit_decay": 0.995,
    "stagnation": 150,  # evaluations without a new best before exploring more
    "tokens_per_evaluation": 25,  # model tokens that take as long as one evaluation (SmolLM2 on 2 busy cores)
    "evaluations_per_dollar": 5000,  # what a dollar of model spend weighs
    "memory_weight": 20,  # pseudo-tries an arm starts with from the memory of earlier searches (0: ignore it)
}


def _setting(ctx: ImproverContext, key: str):
    return ctx.settings.get(key, DEFAULTS[key])


def _arms(ctx: ImproverContext) -> list[str]:
    return [f"{proposer}:{op}" for proposer, ops in sorted(ctx.operators.items()) for op in ops]


def _bandit(ctx: ImproverContext) -> CreditBandit:
    return CreditBandit.from_json(ctx.state["bandit"])


def start(ctx: ImproverContext) -> None:
    if "bandit" not in ctx.state:
        bandit = CreditBandit(_arms(ctx), floor=_setting(ctx, "bandit_floor"), decay=_setting(ctx, "bandit_decay"))
        bandit.prime(credit_rates(ctx.memory), _setting(ctx, "memory_weight"))
        ctx.state["bandit"] = bandit.to_json()
    ctx.state.setdefault("turn", 0)
    ctx.state.setdefault("since_best", 0)


def _pick_parent(ctx: ImproverContext, island: int):
    elites = ctx.archive.elites(island) or ctx.archive.elites()
    rng = ctx.rng
    stagnating = ctx.state["since_best"] > _setting(ctx, "stagnation")
    exploit = _setting(ctx, "exploit") * (0.5 if stagnating else 1.0)
    draw = rng.random()
    if draw < _setting(ctx, "global_best"):
        return ctx.archive.best()
    if draw < _setting(ctx, "global_best") + exploit:
        contenders = [rng.choice(elites) for _ in range(_setting(ctx, "tournament"))]
        return max(contenders, key=lambda e: (e.score, -e.size, -e.id))
    return rng.choice(elites)


def next_step(ctx: ImproverContext) -> Step:
    island = ctx.state["turn"] % ctx.archive.n_islands
    ctx.state["turn"] += 1
    parent = _pick_parent(ctx, island)

    others = [e for e in ctx.archive.elites(island) if e.id != parent.id]
    wanted = min(_setting(ctx, "inspirations"), len(others))
    inspirations = [e.id for e in ctx.rng.sample(others, wanted)]
    best = ctx.archive.best()
    if best is not None and best.id != parent.id and best.id not in inspirations:
        inspirations.append(best.id)

    arm = _choose_arm(ctx)
    if arm not in ctx.state.get("arm_cost", {}):  # when its first call began (see _choose_arm)
        ctx.state.setdefault("first_chosen", {}).setdefault(arm, ctx.evaluations)
    proposer, operator = arm.split(":", 1)
    return Step(parent=parent.id, inspirations=inspirations, island=island, proposer=proposer, operator=operator)


def _choose_arm(ctx: ImproverContext) -> str:
    """The bandit's choice, its probabilities divided by each arm's typical cost: an arm ten times
    as costly gets a tenth of the tries for the same credit rate (its floor too). With every cost
    1 (no model in the run), exactly the bandit's own draw."""
    bandit = _bandit(ctx)
    costs = ctx.state.get("arm_cost", {})
    first = ctx.state.get("first_chosen", {})
    for proposer, operator in ctx.writing:  # chosen, outcome unknown: for now, a try that earned nothing,
        arm = f"{proposer}:{operator}"  # costing what the arm's children cost, or (none known yet) at least
        bandit.expect(arm, costs.get(arm, max(1.0, ctx.evaluations - first.get(arm, ctx.evaluations))))
        # the evaluations made since its first call began
    if all(c == 1.0 for c in costs.values()):
        return bandit.choose(ctx.rng)
    weights = {a: p / costs.get(a, 1.0) for a, p in bandit.probabilities().items()}
    x = ctx.rng.random() * sum(weights.values())
    for arm, weight in weights.items():
        x -= weight
        if x < 0:
            return arm
    return next(reversed(weights))


def observe(ctx: ImproverContext, step: Step, outcome: Outcome) -> None:
    credit = 0.0
    if outcome.improved_parent:
        credit = 1.0
    if outcome.new_best:
        credit = 3.0
        ctx.state["since_best"] = 0
    elif outcome.status in ("ok", "error", "timeout"):
        ctx.state["since_best"] += 1
    arm = f"{step.proposer}:{step.operator}"
    cost = _relative_cost(ctx, outcome)
    costs = ctx.state.setdefault("arm_cost", {})
    costs[arm] = cost if arm not in costs else 0.8 * costs[arm] + 0.2 * cost
    bandit = _bandit(ctx)
    bandit.update(arm, credit, spent=cost)
    ctx.state["bandit"] = bandit.to_json()


def _relative_cost(ctx: ImproverContext, outcome: Outcome) -> float:
    """What this child cost, in evaluations: 1 for a mutation, more for a model's child."""
    per_token = 1.0 / max(1e-9, float(_setting(ctx, "tokens_per_evaluation")))
    return 1.0 + outcome.tokens * per_token + outcome.cost * _setting(ctx, "evaluations_per_dollar")
