"""Gradient-based minimisation: L2-regularised logistic regression on fixed data, 100 steps.

The loss is the mean log-loss of a linear classifier on 200 fixed points with 6 features of very
different scales, plus 0.01 |w|^2 / 2. The program defines ``update(x, grad, velocity, step)``:
given the current weights, the gradient there, the velocity it returned last time (zeros at the
start) and the step number, it returns ``(new_x, new_velocity)``. Each of 4 runs from fixed starts
takes 100 steps. Score: minus the mean of log10(loss(final x) - min loss + 1e-10).
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

DIM = 6
STEPS = 100
FLOOR = 1e-10
RIDGE = 0.01


def _make_problem():
    rng = np.random.default_rng(4702)
    scales = np.array([0.2, 0.5, 1.0, 1.5, 2.5, 4.0])
    features = rng.normal(size=(200, DIM)) * scales
    truth = rng.normal(size=DIM) / scales
    labels = np.where(features @ truth + rng.normal(0.0, 1.0, 200) > 0, 1.0, -1.0)
    starts = rng.normal(0.0, 1.0, (4, DIM))
    return features, labels, starts


FEATURES, LABELS, STARTS = _make_problem()


def objective(x: np.ndarray) -> float:
    margins = LABELS * (FEATURES @ x)
    return float(np.mean(np.logaddexp(0.0, -margins)) + 0.5 * RIDGE * x @ x)


def gradient(x: np.ndarray) -> np.ndarray:
    margins = LABELS * (FEATURES @ x)
    weights = -LABELS / (1.0 + np.exp(margins))
    return FEATURES.T @ weights / len(LABELS) + RIDGE * x


def _newton_minimum() -> float:
    """The exact minimum (trusted, computed once): Newton's method converges in a few steps."""
    x = np.zeros(DIM)
    for _ in range(50):
        margins = LABELS * (FEATURES @ x)
        p = 1.0 / (1.0 + np.exp(-margins))
        hessian = (FEATURES.T * (p * (1 - p))) @ FEATURES / len(LABELS) + RIDGE * np.eye(DIM)
        x = x - np.linalg.solve(hessian, gradient(x))
    return objective(x)


OPTIMUM = _newton_minimum()


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


def _as_vector(value, what: str) -> np.ndarray:
    if np.iscomplexobj(value):
        raise TypeError(f"update returned complex numbers for {what}")
    vector = np.asarray(value, dtype=float)
    if vector.shape == ():
        vector = np.full(DIM, float(vector))
    if vector.shape != (DIM,):
        raise ValueError(f"update returned {what} of shape {vector.shape}, expected ({DIM},)")
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"the optimisation diverged: {what} is not finite")
    return vector


def _run(update, start: np.ndarray) -> float:
    x, velocity = start.copy(), np.zeros(DIM)
    for step in range(STEPS):
        result = update(x.copy(), gradient(x), velocity.copy(), step)
        if not isinstance(result, tuple) or len(result) != 2:
            raise ValueError("update must return a pair (new_x, new_velocity)")
        x, velocity = _as_vector(result[0], "x"), _as_vector(result[1], "velocity")
    gap = objective(x) - OPTIMUM
    if not np.isfinite(gap):
        raise ValueError("the optimisation diverged: f(x) is not finite")
    return gap


def score(update) -> dict[str, float]:
    """Metrics for an update rule (trusted code: the optimisation is run here)."""
    with np.errstate(all="ignore"):
        gaps = np.array([_run(update, start) for start in STARTS])
    return {
        "combined_score": float(-np.mean(np.log10(np.maximum(gaps, 0.0) + FLOOR))),
        "median_gap": float(np.median(gaps)),
    }


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "update"))
