"""Minimisation (the ``minimise_*`` problems), by gradient steps or as a black box.

Gradient steps (``evaluate_update``): the program defines ``update(x, grad, velocity, step)``:
given the current point, the gradient there, the velocity it returned last time (zeros at the
start) and the step number, it returns ``(new_x, new_velocity)``. Each run from a fixed start takes
100 steps. Score: minus the mean of log10(f(final x) - min f + 1e-10), so every factor of 10
closer is worth one point. ``f(x) - min f`` is computed without subtracting two values of f
(``Smooth.gap``): near the minimum that difference is a few units in the last place of f, and a
score made of it would move with the rounding of the machine.

Black box (``evaluate_minimise``): the program defines ``minimise(f, x0, rng)``: starting from
``x0`` it may call ``f(x)`` at most ``budget`` times, using ``rng`` (a seeded numpy Generator) for
randomness. The evaluator keeps the best value seen; a call past the budget raises
``BudgetExhausted``, which ends the run. The return value is ignored. Score: minus the mean over
the runs of log10(best value + 1e-8), so every factor of 10 closer to the optimum (0) is worth one
point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from rsi.meta.suite._families.common import load

STEPS = 100
RUNS = 4
FLOOR = 1e-10  # gradient steps
BLACK_BOX_FLOOR = 1e-8


class Smooth(NamedTuple):
    """A differentiable function to minimise, where its minimum is, and the starts of the runs."""

    objective: Callable[[np.ndarray], float]  # f
    gradient: Callable[[np.ndarray], np.ndarray]
    gap: Callable[[np.ndarray], float]  # f(x) - min f, not computed as a difference of two values of f
    minimum: np.ndarray  # where f is least
    starts: np.ndarray


def quadratic(seed: int, eigenvalues: np.ndarray, runs: int = RUNS) -> Smooth:
    """f(x) = (x - c)^T A (x - c) / 2, A with these eigenvalues in a random basis, c uniform in
    [-1, 1]; the starts are c plus standard normal noise. Its minimum is 0."""
    rng = np.random.default_rng(seed)
    dim = len(eigenvalues)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    matrix = basis @ np.diag(eigenvalues) @ basis.T
    centre = rng.uniform(-1.0, 1.0, dim)
    starts = centre + rng.normal(0.0, 1.0, (runs, dim))

    def gap(x: np.ndarray) -> float:
        d = x - centre
        return float(0.5 * d @ matrix @ d)

    def gradient(x: np.ndarray) -> np.ndarray:
        return matrix @ (x - centre)

    return Smooth(gap, gradient, gap, centre, starts)


def logistic(seed: int, scales: list[float], points: int, ridge: float, runs: int = RUNS) -> Smooth:
    """The mean log-loss of a linear classifier on ``points`` fixed points whose features have the
    given ``scales``, plus ridge |w|^2 / 2; standard normal starts. Its minimum is found by Newton's
    method (trusted, once)."""
    rng = np.random.default_rng(seed)
    scale = np.array(scales)
    dim = len(scale)
    features = rng.normal(size=(points, dim)) * scale
    truth = rng.normal(size=dim) / scale
    labels = np.where(features @ truth + rng.normal(0.0, 1.0, points) > 0, 1.0, -1.0)
    starts = rng.normal(0.0, 1.0, (runs, dim))

    def objective(x: np.ndarray) -> float:
        margins = labels * (features @ x)
        return float(np.mean(np.logaddexp(0.0, -margins)) + 0.5 * ridge * x @ x)

    def gradient(x: np.ndarray) -> np.ndarray:
        margins = labels * (features @ x)
        weights = -labels / (1.0 + np.exp(margins))
        return features.T @ weights / len(labels) + ridge * x

    best = np.zeros(dim)
    for _ in range(50):  # Newton's method converges in a few steps
        margins = labels * (features @ best)
        p = 1.0 / (1.0 + np.exp(-margins))
        hessian = (features.T * (p * (1 - p))) @ features / len(labels) + ridge * np.eye(dim)
        best = best - np.linalg.solve(hessian, gradient(best))
    best_margins = labels * (features @ best)
    weight_at_best = 1.0 / (1.0 + np.exp(best_margins))  # sigmoid(-margin) at the minimum

    def gap(x: np.ndarray) -> float:
        """loss(x) - loss(best) from d = x - best, never as a difference of two losses (rounded to
        a unit in the last place of the loss, that difference is mostly rounding once it is below
        1e-9): per point, where the margin moved by less than 1, log(1 + e^-m) - log(1 + e^-m*) =
        log1p(sigmoid(-m*) expm1(m* - m)) (elsewhere the plain difference, which is then large);
        the ridge term as d . (x + best)."""
        d = x - best
        shift = -labels * (features @ d)  # m* - m
        near = np.abs(shift) < 1.0
        close = np.log1p(weight_at_best * np.expm1(np.where(near, shift, 0.0)))
        apart = np.logaddexp(0.0, -(labels * (features @ x))) - np.logaddexp(0.0, -best_margins)
        return float(np.mean(np.where(near, close, apart)) + 0.5 * ridge * (d @ (x + best)))

    return Smooth(objective, gradient, gap, best, starts)


def _as_vector(value, what: str, dim: int) -> np.ndarray:
    if np.iscomplexobj(value):
        raise TypeError(f"update returned complex numbers for {what}")
    vector = np.asarray(value, dtype=float)
    if vector.shape == ():
        vector = np.full(dim, float(vector))
    if vector.shape != (dim,):
        raise ValueError(f"update returned {what} of shape {vector.shape}, expected ({dim},)")
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"the optimisation diverged: {what} is not finite")
    return vector


def descend(update, problem: Smooth, start: np.ndarray, steps: int = STEPS) -> float:
    """f(x) - min f after ``steps`` updates from ``start``."""
    dim = len(start)
    x, velocity = start.copy(), np.zeros(dim)
    for step in range(steps):
        result = update(x.copy(), problem.gradient(x), velocity.copy(), step)
        if not isinstance(result, tuple) or len(result) != 2:
            raise ValueError("update must return a pair (new_x, new_velocity)")
        x, velocity = _as_vector(result[0], "x", dim), _as_vector(result[1], "velocity", dim)
    gap = problem.gap(x)
    if not np.isfinite(gap):
        raise ValueError("the optimisation diverged: f(x) is not finite")
    return gap


def score_update(update, problem: Smooth) -> dict[str, float]:
    """Metrics for an update rule (trusted code: the optimisation is run here)."""
    with np.errstate(all="ignore"):
        gaps = np.array([descend(update, problem, start) for start in problem.starts])
    return {
        "combined_score": float(-np.mean(np.log10(np.maximum(gaps, 0.0) + FLOOR))),
        "median_gap": float(np.median(gaps)),
    }


def evaluate_update(program_path, problem: Smooth) -> dict[str, float]:
    return score_update(load(program_path, "update"), problem)


# ------------------------------------------------------------------ black box


def rosenbrock(x: np.ndarray) -> float:
    v = x.tolist()
    return sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2 for a, b in zip(v, v[1:], strict=False))


class BudgetExhausted(Exception):
    """Raised by ``f`` when the program asks for more evaluations than the budget allows."""


def search(minimise, objective: Callable[[np.ndarray], float], start: np.ndarray, seed: int,
           budget: int) -> tuple[float, int]:
    """Best objective value the program found from ``start``, and how many calls it made."""
    dim = len(start)
    best = [np.inf]
    calls = [0]

    def f(x) -> float:
        if calls[0] >= budget:
            raise BudgetExhausted(f"the budget of {budget} evaluations is spent")
        if np.iscomplexobj(x):
            raise TypeError("f takes real numbers, not complex ones")
        point = np.asarray(x, dtype=float)
        if point.shape != (dim,):
            raise ValueError(f"f takes an array of shape ({dim},), got {point.shape}")
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


def score_minimise(minimise, objective: Callable[[np.ndarray], float], starts: np.ndarray,
                   budget: int) -> dict[str, float]:
    """Metrics for a minimiser (trusted code: every call of f is counted and recorded here)."""
    bests, calls = [], 0
    with np.errstate(all="ignore"):
        for index, start in enumerate(starts):
            value, used = search(minimise, objective, start, index, budget)
            bests.append(value)
            calls += used
    logs = np.log10(np.asarray(bests) + BLACK_BOX_FLOOR)
    return {
        "combined_score": float(-np.mean(logs)),
        "median_best": float(np.median(bests)),
        "calls": float(calls),
    }


def evaluate_minimise(program_path, objective: Callable[[np.ndarray], float], starts: np.ndarray,
                      budget: int) -> dict[str, float]:
    return score_minimise(load(program_path, "minimise"), objective, starts, budget)
