"""What the meta-evaluator and its two sandboxed evaluator files exchange.

- A search task is the candidate improver's source as the program, with the unit as the task's
  trusted ``context``: ``{"problem", "seed", "budget", "eval_cpu", "eval_wall"}``, and ``"memory"``
  when the searches are given one (``rsi.memory``).
- A search answers with artifacts (``EvalResult.data``): the best program's source, what the
  search claims about it and what each operator did (``operators``: counts for ``rsi.memory``);
  ``parse_result`` checks their shape, and nothing they say about quality is
  believed (the source is re-scored).
- A re-scoring task is the program to score, with ``{"problem": name}`` as its context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import RsiError
from ..memory import VERSION, check, plain

MAX_SOURCE = 256 * 1024


def unit_context(problem: str, seed: int, budget: int, eval_cpu: float, eval_wall: float,
                 memory: Mapping[str, Any] | None = None) -> dict[str, Any]:
    unit = {"problem": problem, "seed": seed, "budget": budget, "eval_cpu": eval_cpu, "eval_wall": eval_wall}
    return {**unit, "memory": plain(memory)} if memory else unit


def parse_result(data: object, problem: str, seed: int) -> dict[str, Any] | str:
    """The search's artifacts, checked (the right unit, a source, plain numbers); or why not."""
    if not isinstance(data, dict):
        return "no result from the search (its evaluator returned no artifacts)"
    if data.get("problem") != problem or data.get("seed") != seed:
        return "a result for another unit"
    source = data.get("source")
    if not isinstance(source, str) or not source or len(source) > MAX_SOURCE:
        return "no program source (or one over 256 KB)"
    claimed = data.get("claimed")
    claimed = float(claimed) if isinstance(claimed, (int, float)) and math.isfinite(claimed) else None
    evaluations = data.get("evaluations")
    evaluations = evaluations if isinstance(evaluations, int) and evaluations >= 0 else 0
    try:  # what each operator did in the search: advisory (rsi.memory), dropped if malformed
        operators = plain(check({"version": VERSION, "arms": data.get("operators") or {}}, "the search's counts"))
    except RsiError:
        operators = {"arms": {}}
    return {"source": source, "claimed": claimed, "evaluations": evaluations, "operators": operators["arms"]}
