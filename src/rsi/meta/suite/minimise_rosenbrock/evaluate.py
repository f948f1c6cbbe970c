"""Black-box minimisation of the 4-dimensional Rosenbrock function, 300 evaluations per run.

The program defines ``minimise(f, x0, rng)``; ``x`` is an array of 4 floats; 6 runs from fixed
starts uniform in [-2, 2]^4, the optimum is 0. The program, the runs and the score: see
``rsi/meta/suite/_families/minimisation.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import minimisation

STARTS = np.random.default_rng(4601).uniform(-2.0, 2.0, (6, 4))


def evaluate(program_path) -> dict[str, float]:
    return minimisation.evaluate_minimise(program_path, minimisation.rosenbrock, STARTS, budget=300)
