"""Black-box minimisation of the 4-dimensional Rosenbrock function, 300 evaluations per run.

The program defines ``minimise(f, x0, rng)``: starting from ``x0`` it may call ``f(x)`` (``x`` an
array of 4 floats) at most 300 times, using ``rng`` (a seeded numpy Generator) for randomness.
The evaluator keeps the best value seen; a call past the budget raises ``BudgetExhausted``, which
ends the run. The return value is ignored. Score over 6 runs with fixed starts: minus the mean of
log10(best value + 1e-8), so every factor of 10 closer to the optimum (0) is worth one point.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

DIM = 4
BUDGET = 300
RUNS = 6
FLOOR = 1e-8


def objective(x: np.ndarray) -> float:
    v = x.tolist()
    return sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2 for a, b in zip(v, v[1:]))


STARTS = np.random.default_rng(4601).uniform(-2.0, 2.0, (RUNS, DIM))


class BudgetExhausted(Exception):
    """Raised by ``f`` when the program asks for more evaluations than the budget allows."""


def _load(program_path, function: str):
    """Import the candidate under a fresh module name and return its ``function``."""
    random.seed(0)
    np.random.seed(0)
    spec = importlib.util.spec_from_file_location(f"candidate_{uuid.uuid4().hex}", program_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import a Python module from {program_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise AttributeError(f"the program must define a function {function}()")
    return fn


def _run(minimise, start: np.ndarray, seed: int) -> tuple[float, int]:
    """Best objective value the program found from ``start``, and how many calls it made."""
    best = [np.inf]
    calls = [0]

    def f(x) -> float:
        if calls[0] >= BUDGET:
            raise BudgetExhausted(f"the budget of {BUDGET} evaluations is spent")
        if np.iscomplexobj(x):
            raise TypeError("f takes real numbers, not complex ones")
        point = np.asarray(x, dtype=float)
        if point.shape != (DIM,):
            raise ValueError(f"f takes an array of shape ({DIM},), got {point.shape}")
        calls[0] += 1
        value = objective(point)
        if value != value:  # NaN in, NaN out
            raise ValueError("f was called with NaN")
        best[0] = min(best[0], value)
        return value

    try:
        minimise(f, start.copy(), np.random.default_rng(seed))
    except BudgetExhausted:
        pass
    if calls[0] == 0:
        raise ValueError("minimise never called f")
    return best[0], calls[0]


def score(minimise) -> dict[str, float]:
    """Metrics for a minimiser (trusted code: every call of f is counted and recorded here)."""
    bests, calls = [], 0
    with np.errstate(all="ignore"):
        for index, start in enumerate(STARTS):
            value, used = _run(minimise, start, seed=index)
            bests.append(value)
            calls += used
    logs = np.log10(np.asarray(bests) + FLOOR)
    return {
        "combined_score": float(-np.mean(logs)),
        "median_best": float(np.median(bests)),
        "calls": float(calls),
    }


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "minimise"))
