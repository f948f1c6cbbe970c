"""Two-constraint 0/1 knapsack, greedy by priority (the ``knapsack_*`` problems).

Each item has a value and two weights. The program defines ``priority(values, weights,
capacity)`` (``weights`` of shape (items, 2), ``capacity`` of shape (2,)) returning one score per
item; items are taken in order of decreasing score (ties by index), each one if it still fits in
both dimensions. Score: minus the mean percentage gap to the optimum, computed exactly by dynamic
programming.

A problem gives its instances: ``instances(seed, fractions, values)``, where ``values(rng,
weights)`` draws the items' values once their weights are drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rsi.meta.suite._families.common import as_scores, load

ITEMS = 50
INSTANCES = 6

Instance = tuple[np.ndarray, np.ndarray, np.ndarray, float]  # values, weights, capacity, optimum


def optimum(values: np.ndarray, weights: np.ndarray, capacity: np.ndarray) -> float:
    """Exact optimum by dynamic programming over both capacities (trusted, computed once)."""
    rows, cols = int(capacity[0]) + 1, int(capacity[1]) + 1
    best = np.zeros((rows, cols))
    for value, (w0, w1) in zip(values, weights.astype(int), strict=True):
        if w0 < rows and w1 < cols:
            best[w0:, w1:] = np.maximum(best[w0:, w1:], best[: rows - w0, : cols - w1] + value)
    return float(best[-1, -1])


def instances(seed: int, fractions: tuple[float, float],
              values: Callable[[np.random.Generator, np.ndarray], np.ndarray],
              count: int = INSTANCES, items: int = ITEMS) -> list[Instance]:
    """``count`` instances of ``items`` items, weights uniform on 1..20, capacities the given
    ``fractions`` of the total of each weight (rounded down), with their optima."""
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(count):
        weights = rng.integers(1, 21, (items, 2)).astype(float)
        worth = values(rng, weights)
        capacity = np.floor(np.array(fractions) * weights.sum(axis=0))
        made.append((worth, weights, capacity, optimum(worth, weights, capacity)))
    return made


def greedy_value(priority, values: np.ndarray, weights: np.ndarray, capacity: np.ndarray) -> float:
    raw = priority(values.copy(), weights.copy(), capacity.copy())
    scores = as_scores(raw, values.shape, "priority")
    if np.isnan(scores).any():
        raise ValueError("priority returned NaN")
    room, total = capacity.copy(), 0.0
    for item in np.argsort(-scores, kind="stable"):
        if np.all(weights[item] <= room):
            room -= weights[item]
            total += values[item]
    return total


def score(priority, data: list[Instance]) -> dict[str, float]:
    """Metrics for a priority function (trusted code: the greedy fill is done here)."""
    gaps = []
    with np.errstate(all="ignore"):
        for values, weights, capacity, best in data:
            value = greedy_value(priority, values, weights, capacity)
            gaps.append(100.0 * (1.0 - value / best))
    mean = float(np.mean(gaps))
    return {"combined_score": -mean, "gap_pct": mean}


def evaluate(program_path, data: list[Instance]) -> dict[str, float]:
    return score(load(program_path, "priority"), data)
