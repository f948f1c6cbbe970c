"""Two-constraint 0/1 knapsack, greedy by priority: 6 instances of 50 items.

Each item has a value (uniform on 1..40) and two weights (uniform on 1..20); the capacities are
20% and 30% of the total of each weight. The program, the greedy fill and the score: see
``rsi/meta/suite/_families/knapsack.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import knapsack

DATA = knapsack.instances(7601, (0.2, 0.3), lambda rng, weights: rng.integers(1, 41, len(weights)).astype(float))


def evaluate(program_path) -> dict[str, float]:
    return knapsack.evaluate(program_path, DATA)
