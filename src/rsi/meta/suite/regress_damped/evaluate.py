"""Symbolic regression: fit y = exp(-0.5 x) cos(3 x) on 64 fixed points in [0, 4].

The program and the score: see ``rsi/meta/suite/_families/regression.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import regression

X = np.linspace(0.0, 4.0, 64)
Y = np.exp(-0.5 * X) * np.cos(3.0 * X)


def evaluate(program_path) -> dict[str, float]:
    return regression.evaluate(program_path, X, Y)
