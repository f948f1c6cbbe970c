"""Two-constraint 0/1 knapsack with correlated values, greedy by priority: 6 instances of 50 items.

Each item has two weights (uniform on 1..20) and a value correlated with them (their sum plus a
uniform integer in -8..8, at least 1); the capacities are 20% and 35% of the total of each
weight. The program, the greedy fill and the score: see ``rsi/meta/suite/_families/knapsack.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import knapsack


def _values(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    return np.maximum(weights.sum(axis=1) + rng.integers(-8, 9, len(weights)), 1.0)


DATA = knapsack.instances(7602, (0.2, 0.35), _values)


def evaluate(program_path) -> dict[str, float]:
    return knapsack.evaluate(program_path, DATA)
