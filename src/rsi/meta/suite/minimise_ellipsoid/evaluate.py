"""Gradient-based minimisation: a rotated quadratic in 12 dimensions, condition 400, 100 steps.

f(x) = (x - c)^T A (x - c) / 2 with A's eigenvalues in two clusters, 0.5..2 and 50..200, in a fixed
random basis; 4 runs from fixed starts. The program, the runs and the score: see
``rsi/meta/suite/_families/minimisation.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import minimisation

PROBLEM = minimisation.quadratic(4703, np.r_[np.linspace(0.5, 2.0, 6), np.linspace(50.0, 200.0, 6)])


def evaluate(program_path) -> dict[str, float]:
    return minimisation.evaluate_update(program_path, PROBLEM)
