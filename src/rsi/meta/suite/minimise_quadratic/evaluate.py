"""Gradient-based minimisation: a rotated ill-conditioned quadratic in 8 dimensions, 100 steps.

f(x) = (x - c)^T A (x - c) / 2 with A's eigenvalues log-spaced from 1 to 100 in a fixed random
basis; 4 runs from fixed starts. The program, the runs and the score: see
``rsi/meta/suite/_families/minimisation.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import minimisation

PROBLEM = minimisation.quadratic(4701, np.logspace(0.0, 2.0, 8))


def evaluate(program_path) -> dict[str, float]:
    return minimisation.evaluate_update(program_path, PROBLEM)
