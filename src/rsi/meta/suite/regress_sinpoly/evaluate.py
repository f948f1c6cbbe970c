"""Symbolic regression: fit y = 0.3 x^2 + sin(2 x) - 0.5 on 64 fixed points in [-3, 3].

The program and the score: see ``rsi/meta/suite/_families/regression.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import regression

X = np.linspace(-3.0, 3.0, 64)
Y = 0.3 * X**2 + np.sin(2.0 * X) - 0.5


def evaluate(program_path) -> dict[str, float]:
    return regression.evaluate(program_path, X, Y)
