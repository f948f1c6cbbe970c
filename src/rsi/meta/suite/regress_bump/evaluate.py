"""Symbolic regression: fit y = 1.5 exp(-(x - 1)^2) - exp(-2 (x + 1.5)^2) on 64 points in [-4, 4].

The program and the score: see ``rsi/meta/suite/_families/regression.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import regression

X = np.linspace(-4.0, 4.0, 64)
Y = 1.5 * np.exp(-((X - 1.0) ** 2)) - np.exp(-2.0 * (X + 1.5) ** 2)


def evaluate(program_path) -> dict[str, float]:
    return regression.evaluate(program_path, X, Y)
