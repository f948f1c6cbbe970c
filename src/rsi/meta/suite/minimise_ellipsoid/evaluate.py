"""Gradient-based minimisation: a rotated quadratic in 12 dimensions, condition 400, 100 steps.

f(x) = (x - c)^T A (x - c) / 2 with A's eigenvalues in two clusters, 0.5..2 and 50..200, in a fixed
random basis. The program defines ``update(x, grad, velocity, step)``: given the current point, the
gradient there, the velocity it returned last time (zeros at the start) and the step number, it
returns ``(new_x, new_velocity)``. Each of 4 runs from fixed starts takes 100 steps. Score: minus
the mean of log10(f(final x) - min f + 1e-10), so every factor of 10 closer is worth one point.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

DIM = 12
STEPS = 100
FLOOR = 1e-10


def _make_problem():
    rng = np.random.default_rng(4703)
    basis, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    matrix = basis @ np.diag(np.r_[np.linspace(0.5, 2.0, 6), np.linspace(50.0, 200.0, 6)]) @ basis.T
    centre = rng.uniform(-1.0, 1.0, DIM)
    starts = centre + rng.normal(0.0, 1.0, (4, DIM))
    return matrix, centre, starts


MATRIX, CENTRE, STARTS = _make_problem()
OPTIMUM = 0.0


def objective(x: np.ndarray) -> float:
    d = x - CENTRE
    return float(0.5 * d @ MATRIX @ d)


def gradient(x: np.ndarray) -> np.ndarray:
    return MATRIX @ (x - CENTRE)


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
