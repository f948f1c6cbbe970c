"""Which of a run's budgets other than evaluations is spent, from the counts the engine keeps.

Pure arithmetic over ``[run]`` settings and counts no improver or proposer can reach; the search
(``rsi.search``) calls it before each new proposal, sets the stop reason it returns and logs the
payload. The evaluation budget stays with the search: it depends on what is in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .settings import RunSettings
from .status import StopReason


def spent(run: RunSettings, *, elapsed: float, usage: Mapping[str, float],
          proposals: int) -> tuple[StopReason, dict[str, Any] | None] | None:
    """The first spent budget, with what to log (``budget.reached``; None: nothing to log), or None.

    ``elapsed``: the search's wall seconds; ``usage``: its ``cpu_seconds``, ``tokens`` and ``cost``;
    ``proposals``: children asked for so far (more than ``budget * max_attempts_factor`` of them
    means the proposers keep writing nothing worth evaluating: the search is stuck)."""
    checks: list[tuple[bool, StopReason, dict[str, Any]]] = [
        (run.time is not None and elapsed >= run.time, StopReason.TIME,
         {"budget": "wall_seconds", "limit": run.time}),
        (run.cpu_seconds is not None and usage["cpu_seconds"] >= run.cpu_seconds, StopReason.CPU,
         {"budget": "cpu_seconds", "limit": run.cpu_seconds, "used": usage["cpu_seconds"]}),
        (run.max_tokens is not None and usage["tokens"] >= run.max_tokens, StopReason.TOKENS,
         {"budget": "tokens", "limit": run.max_tokens, "used": usage["tokens"]}),
        (run.max_cost is not None and usage["cost"] >= run.max_cost, StopReason.COST,
         {"budget": "cost", "limit": run.max_cost, "used": usage["cost"]}),
    ]
    for reached, reason, payload in checks:
        if reached:
            return reason, payload
    if proposals >= run.budget * run.max_attempts_factor:
        return StopReason.STUCK, None
    return None
