"""Symbolic regression: fit y = 2 x / (1 + x^2) + 0.25 x on 64 fixed points in [-4, 4].

The program and the score: see ``rsi/meta/suite/_families/regression.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import regression

X = np.linspace(-4.0, 4.0, 64)
Y = 2.0 * X / (1.0 + X**2) + 0.25 * X


def evaluate(program_path) -> dict[str, float]:
    return regression.evaluate(program_path, X, Y)
