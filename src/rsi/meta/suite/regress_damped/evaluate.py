"""Symbolic regression: fit y = exp(-0.5 x) cos(3 x) on 64 fixed points in [0, 4].

The program defines ``f(x)`` mapping an array of inputs to an array of predictions (a scalar is
broadcast). Score: -log10(MSE + 1e-4), so a fit with an MSE of 1 scores about 0 and an exact one
scores 4; the floor keeps the scale bounded and stops rounding noise counting as progress.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

FLOOR = 1e-4
X = np.linspace(0.0, 4.0, 64)
Y = np.exp(-0.5 * X) * np.cos(3.0 * X)


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


def _as_scores(raw, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The program's output as real numbers of ``shape`` (a scalar is broadcast), or an error."""
    if np.iscomplexobj(raw):
        raise TypeError(f"{what} returned complex numbers")
    values = np.asarray(raw, dtype=float)
    if values.shape == ():
        return np.full(shape, float(values))
    if values.shape != shape:
        raise ValueError(f"{what} returned shape {values.shape}, expected {shape}")
    return values


def score(f) -> dict[str, float]:
    """Metrics for a model ``f`` (trusted code: the error is computed here)."""
    with np.errstate(all="ignore"):
        prediction = _as_scores(f(X.copy()), X.shape, "f")
        if not np.all(np.isfinite(prediction)):
            raise ValueError("f returned NaN or infinity")
        mse = float(np.mean((prediction - Y) ** 2))
    if not np.isfinite(mse):
        raise ValueError("f's predictions are so large that the squared error overflows")
    return {"combined_score": float(-np.log10(mse + FLOOR)), "mse": mse}


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "f"))
