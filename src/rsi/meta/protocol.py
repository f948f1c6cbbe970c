"""The plain-text framing between the meta-evaluator and its two evaluator files.

- A search task is the candidate improver's source followed by one line the trusted side writes,
  ``# rsi-meta-unit {"problem": ..., "seed": ..., "budget": ...}``.
- A search answers with one line on its captured standard output, ``RSI-META-RESULT {json}``:
  the best program's source and what the search claims about it (never believed).
- A re-scoring task is ``# rsi-meta-rescore <problem>`` followed by the program to score.
"""

from __future__ import annotations

import json
import math
from typing import Any

UNIT_MARK = "# rsi-meta-unit "
RESULT_MARK = "RSI-META-RESULT "
RESCORE_MARK = "# rsi-meta-rescore "
MAX_SOURCE = 256 * 1024


def unit_task(improver_source: str, unit: dict[str, Any]) -> str:
    return improver_source.rstrip("\n") + "\n" + UNIT_MARK + json.dumps(unit) + "\n"


def split_unit_task(text: str) -> tuple[str, dict[str, Any]]:
    """(improver source, unit): the unit is the last line, written by the trusted side."""
    body, _, last = text.rstrip("\n").rpartition("\n")
    if not last.startswith(UNIT_MARK):
        raise ValueError("the task has no rsi-meta-unit line")
    return body + "\n", json.loads(last[len(UNIT_MARK):])


def result_line(data: dict[str, Any]) -> str:
    return RESULT_MARK + json.dumps(data) + "\n"


def parse_result(stdout: str, problem: str, seed: int) -> dict[str, Any] | str:
    """The search's last result line, checked (the right unit, a source, plain numbers); or why not."""
    lines = [line for line in (stdout or "").splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        return "no result line in the search's output"
    try:
        data = json.loads(lines[-1][len(RESULT_MARK):])
    except ValueError:
        return "an unreadable result line"
    if not isinstance(data, dict) or data.get("problem") != problem or data.get("seed") != seed:
        return "a result for another unit"
    source = data.get("source")
    if not isinstance(source, str) or not source or len(source) > MAX_SOURCE:
        return "no program source (or one over 256 KB)"
    claimed = data.get("claimed")
    claimed = float(claimed) if isinstance(claimed, (int, float)) and math.isfinite(claimed) else None
    evaluations = data.get("evaluations")
    evaluations = evaluations if isinstance(evaluations, int) and evaluations >= 0 else 0
    return {"source": source, "claimed": claimed, "evaluations": evaluations}


def rescore_task(problem: str, source: str) -> str:
    return f"{RESCORE_MARK}{problem}\n{source}"


def rescore_problem(first_line: str) -> str:
    if not first_line.startswith(RESCORE_MARK):
        raise ValueError("the task has no rsi-meta-rescore line")
    return first_line[len(RESCORE_MARK):].strip()
