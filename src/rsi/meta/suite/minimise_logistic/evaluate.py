"""Gradient-based minimisation: L2-regularised logistic regression on fixed data, 100 steps.

The loss is the mean log-loss of a linear classifier on 200 fixed points with 6 features of very
different scales, plus 0.01 |w|^2 / 2; 4 runs from fixed starts. The program, the runs and the
score: see ``rsi/meta/suite/_families/minimisation.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import minimisation

PROBLEM = minimisation.logistic(4702, scales=[0.2, 0.5, 1.0, 1.5, 2.5, 4.0], points=200, ridge=0.01)


def evaluate(program_path) -> dict[str, float]:
    return minimisation.evaluate_update(program_path, PROBLEM)
