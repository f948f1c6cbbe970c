"""An improver that owns an operator: the seed improver, plus coordinate tuning of the best program's
numeric constants.

    rsi run examples/binpack --improver examples/improvers/tuning.py

Most steps are the seed improver's (``rsi/improvers/seed.py``: islands, tournaments, the credit
bandit over mutate's operators). A share ``tune_share`` of the steps instead hands the best
program so far to this module's own operator ``tune`` (``OPERATORS`` at the bottom), which runs a
compass search, one float constant at a time, across successive children:

- it tries ``value * exp(+step)``, then, if that child was no better than its parent,
  ``value * exp(-step)``; a success doubles the step (up to ``tune_max_step``) and keeps the
  direction; two failures halve the step (back to ``tune_step`` once below ``tune_min_step``)
  and move on to the next constant;
- the step sizes and directions, the constant being tuned and the results of earlier trials are
  remembered in ``ctx.state``, which the operator shares with ``next_step`` and ``observe``: each
  trial gets a number in ``Step.options`` (the operator reads it as ``ctx.options``; ``observe``
  gets the same step back with the child's outcome), so a result finds its trial even when
  several children are in flight.

The operator is written with ``rsi.toolkit`` (``ctx.parent.constants()``, ``site.set(x)``), never
sees the evaluator, and runs in a confined child process with a CPU cap: see
``rsi.proposers.improver_ops``.
"""

from __future__ import annotations

import math

from rsi.improvers import ImproverContext, Outcome, Step, seed

DEFAULTS = {
    **seed.DEFAULTS,
    "tune_share": 0.25,  # share of steps that tune the best program's constants
    "tune_step": 0.5,  # first step, in log space (x1.65 / x0.61)
    "tune_max_step": 2.0,
    "tune_min_step": 0.01,  # below this, a constant counts as tuned: the next one is tried
}


def _setting(ctx, key: str):
    return ctx.settings.get(key, DEFAULTS[key])


def start(ctx: ImproverContext) -> None:
    seed.start(ctx)
    ctx.state.setdefault("tune", {"trials": {}, "next_trial": 0, "coordinate": 0, "steps": {}, "directions": {},
                                  "failures": {}})


def next_step(ctx: ImproverContext) -> Step:
    best = ctx.archive.best()
    tune = ctx.state["tune"]
    if best is None or best.id == tune.get("untunable") or ctx.rng.random() >= _setting(ctx, "tune_share"):
        return seed.next_step(ctx)
    trial = tune["next_trial"]
    tune["next_trial"] = trial + 1
    return Step(parent=best.id, island=seed_island(ctx), proposer="improver", operator="tune",
                options={"trial": trial})


def seed_island(ctx: ImproverContext) -> int:
    """The island whose turn it is (as the seed improver counts turns)."""
    island = ctx.state["turn"] % ctx.archive.n_islands
    ctx.state["turn"] += 1
    return island


def observe(ctx: ImproverContext, step: Step, outcome: Outcome) -> None:
    seed.observe(ctx, step, outcome)
    if step.operator != "tune" or "trial" not in step.options:
        return
    trial = ctx.state["tune"]["trials"].get(str(step.options["trial"]))
    if trial is not None:  # None: the operator made no child for it
        trial["improved"] = outcome.improved_parent


# -- the operator ------------------------------------------------------------------------------
def tune(ctx) -> object:
    """One trial of the compass search on the parent's float constants (see the module docstring)."""
    state = ctx.state["tune"]
    _learn(ctx, state)
    sites = [c for c in ctx.parent.constants() if not c.is_int]
    if not sites:
        state["untunable"] = ctx.parent_id  # next_step leaves this program to mutate
        return None  # no child this time (the engine records why)
    # the next (constant, direction) to try, skipping the trials of this parent still in flight
    pending = {(t["coordinate"], t["direction"]) for t in state["trials"].values()
               if t["improved"] is None and t["parent"] == ctx.parent_id}
    first = state["coordinate"] % len(sites)
    moves = [(i % len(sites), d * state["directions"].get(str(i % len(sites)), 1))
             for i in range(first, first + len(sites)) for d in (1, -1)]
    index, direction = next((move for move in moves if move not in pending), moves[0])
    step = state["steps"].get(str(index), _setting(ctx, "tune_step"))
    site = sites[index]
    value = site.value * math.exp(direction * step) if site.value != 0 else direction * step
    state["trials"][str(ctx.options.get("trial", -1))] = {
        "parent": ctx.parent_id, "coordinate": index, "step": step, "direction": direction, "improved": None}
    return site.set(value, digits=6)


def _learn(ctx, state) -> None:
    """Fold the trials whose results came back into step sizes and directions, oldest first."""
    done = sorted((int(n), t) for n, t in state["trials"].items() if t["improved"] is not None)
    for number, trial in done:
        key = str(trial["coordinate"])
        if trial["improved"]:
            state["steps"][key] = min(trial["step"] * 2, _setting(ctx, "tune_max_step"))
            state["directions"][key] = trial["direction"]
            state["failures"][key] = 0
        else:
            failures = state["failures"].get(key, 0) + 1
            state["directions"][key] = -trial["direction"]
            state["failures"][key] = failures
            if failures >= 2:  # both directions failed: a smaller step next time, and the next constant
                state["failures"][key] = 0
                smaller = trial["step"] / 2
                fresh = smaller < _setting(ctx, "tune_min_step")
                state["steps"][key] = _setting(ctx, "tune_step") if fresh else smaller
                state["coordinate"] = trial["coordinate"] + 1
        del state["trials"][str(number)]


OPERATORS = {"tune": tune}
