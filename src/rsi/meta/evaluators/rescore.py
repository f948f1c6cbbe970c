"""The trusted re-scoring of what an inner search returned: the problem's own evaluator.

An ``EvaluatorPool`` worker imports this file once; it loads the evaluators of the problems named
in ``RSI_META_PROBLEMS`` (folders separated by ``os.pathsep``). Each task's program is the
program to score and its trusted context names the problem (``{"problem": name}``); ``evaluate``
hands it to that problem's ``evaluate``, exactly as an ordinary run of the problem would (in a
fresh sandboxed child, with the pool's limits).
"""

from __future__ import annotations

import os
from pathlib import Path

from rsi.executors import load_evaluate
from rsi.problem import load_problem


def _load(folder: Path):
    evaluate = load_evaluate(load_problem(folder))
    evaluate(str(folder / "initial.py"))  # warm: numpy's lazy first-call costs, paid once
    return evaluate


EVALUATORS = {Path(folder).name: _load(Path(folder))
              for folder in filter(None, os.environ.get("RSI_META_PROBLEMS", "").split(os.pathsep))}


def evaluate(program_path, context) -> dict[str, float]:
    name = context["problem"]
    if name not in EVALUATORS:
        raise ValueError(f"problem {name!r} is not loaded in this pool")
    return EVALUATORS[name](program_path)
