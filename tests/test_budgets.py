"""rsi.budgets: which budget a run has spent, from the engine's counts (the search sets the stop)."""

import pytest

from rsi.budgets import spent
from rsi.settings import RunSettings
from rsi.status import StopReason

NOTHING = {"cpu_seconds": 0.0, "tokens": 0, "cost": 0.0}


def test_nothing_is_spent_without_limits_or_below_them():
    assert spent(RunSettings(budget=10), elapsed=1e9, usage={"cpu_seconds": 1e9, "tokens": 10**9, "cost": 1e9},
                 proposals=0) is None  # no time, CPU, token or cost limit set: only evaluations count
    run = RunSettings(budget=10, time=60, cpu_seconds=30, max_tokens=1000, max_cost=0.5)
    assert spent(run, elapsed=59.9, usage={"cpu_seconds": 29.9, "tokens": 999, "cost": 0.49}, proposals=199) is None


@pytest.mark.parametrize(("usage", "elapsed", "reason", "payload"), [
    (NOTHING, 60.0, StopReason.TIME, {"budget": "wall_seconds", "limit": 60}),
    ({**NOTHING, "cpu_seconds": 31.5}, 0.0, StopReason.CPU, {"budget": "cpu_seconds", "limit": 30, "used": 31.5}),
    ({**NOTHING, "tokens": 1000}, 0.0, StopReason.TOKENS, {"budget": "tokens", "limit": 1000, "used": 1000}),
    ({**NOTHING, "cost": 0.51}, 0.0, StopReason.COST, {"budget": "cost", "limit": 0.5, "used": 0.51}),
])
def test_each_spent_budget_is_named_with_what_was_used(usage, elapsed, reason, payload):
    run = RunSettings(budget=10, time=60, cpu_seconds=30, max_tokens=1000, max_cost=0.5)
    assert spent(run, elapsed=elapsed, usage=usage, proposals=0) == (reason, payload)


def test_time_comes_first_and_too_many_proposals_is_a_stuck_search():
    run = RunSettings(budget=10, time=60, max_tokens=5, max_attempts_factor=3)
    assert spent(run, elapsed=61, usage={**NOTHING, "tokens": 9}, proposals=30)[0] == StopReason.TIME
    assert spent(run, elapsed=0, usage=NOTHING, proposals=29) is None
    assert spent(run, elapsed=0, usage=NOTHING, proposals=30) == (StopReason.STUCK, None)
