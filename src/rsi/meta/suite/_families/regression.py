"""Symbolic regression (the ``regress_*`` problems).

The program defines ``f(x)`` mapping an array of inputs to an array of predictions (a scalar is
broadcast). Score: -log10(MSE + 1e-4), so a fit with an MSE of 1 scores about 0 and an exact one
scores 4; the floor keeps the scale bounded and stops rounding noise counting as progress.

A problem gives its fixed inputs ``x`` and targets ``y``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families.common import as_scores, load

FLOOR = 1e-4


def score(f, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Metrics for a model ``f`` (trusted code: the error is computed here)."""
    with np.errstate(all="ignore"):
        prediction = as_scores(f(x.copy()), x.shape, "f")
        if not np.all(np.isfinite(prediction)):
            raise ValueError("f returned NaN or infinity")
        mse = float(np.mean((prediction - y) ** 2))
    if not np.isfinite(mse):
        raise ValueError("f's predictions are so large that the squared error overflows")
    return {"combined_score": float(-np.log10(mse + FLOOR)), "mse": mse}


def evaluate(program_path, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return score(load(program_path, "f"), x, y)
