"""The sandboxed side of the meta-utility: one inner search driven by a candidate improver.

An ``EvaluatorPool`` worker imports this file once. At import (before any candidate runs) it
loads the problems named in ``RSI_META_PROBLEMS`` (folders separated by ``os.pathsep``): their
settings, initial programs and trusted evaluators, so that a search needs nothing from the file
system but its own task folder. Only those problems: the trusted side decides which splits a
pool may see, and test problems are never given to a pool that serves a decision.

Each task's program is a candidate improver; its trusted context names the unit (``{"problem",
"seed", "budget", ...}``). ``evaluate`` runs that search (``rsi.meta.inner``) under the limits the
pool enforces and returns the best program it found as artifacts, which the trusted side checks
and re-scores. The number it returns is a count, never a score: nothing this process reports about
quality is believed.
"""

from __future__ import annotations

import collections  # noqa: F401 - what an improver may import, loaded before the sandbox narrows
import heapq  # noqa: F401    reads (candidates may read only their task folder and rsi's engine)
import itertools  # noqa: F401
import math  # noqa: F401
import os
import random  # noqa: F401
import statistics  # noqa: F401
from pathlib import Path

import cmaes  # type: ignore[import-untyped]  # noqa: F401 - CMA-ES for the tune proposer's moves (rsi.proposers.tune imports it on first use)

import rsi.improvers.seed  # noqa: F401 - the seed improver and its bandit
import rsi.memory  # noqa: F401
import rsi.proposers.bandit  # noqa: F401
import rsi.proposers.tune  # noqa: F401 - multi-evaluation moves
from rsi.errors import RsiError
from rsi.executors import load_evaluate
from rsi.improvers import load_improver
from rsi.meta import inner
from rsi.problem import load_problem
from rsi.sandbox.types import Evaluation


def _preload() -> dict:
    """Each problem, loaded and warmed: its evaluator runs once on the (trusted) initial program,
    so that the lazy first-call costs of numpy (up to 70 ms) are paid here, not in every fork."""
    problems = {}
    for folder in filter(None, os.environ.get("RSI_META_PROBLEMS", "").split(os.pathsep)):
        problem = load_problem(folder)
        evaluate_program = load_evaluate(problem)
        evaluate_program(str(problem.root / "initial.py"))
        problems[problem.name] = (problem, evaluate_program)
    return problems


PROBLEMS = _preload()


def evaluate(program_path, context) -> Evaluation:
    unit = context
    if unit["problem"] not in PROBLEMS:
        raise ValueError(f"problem {unit['problem']!r} is not loaded in this pool")
    problem, evaluate_program = PROBLEMS[unit["problem"]]
    folder = Path(program_path).resolve().parent
    try:
        improver = load_improver(program_path)
    except RsiError as exc:
        raise RuntimeError(str(exc)) from None
    found = inner.search(problem, evaluate_program, improver, int(unit["seed"]), int(unit["budget"]),
                         folder / "search", float(unit.get("eval_cpu", 1.0)), float(unit.get("eval_wall", 3.0)),
                         memory=unit.get("memory"))
    artifacts = {"problem": problem.name, "seed": unit["seed"], "source": found.best_source,
                 "claimed": found.best_score, "evaluations": found.evaluations, "stop": str(found.stop_reason),
                 "counts": found.counts, "operators": found.operators}
    return Evaluation({"combined_score": 0.0, "inner_evaluations": float(found.evaluations)}, artifacts)
