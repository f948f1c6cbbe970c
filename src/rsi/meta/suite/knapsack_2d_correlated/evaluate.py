"""Two-constraint 0/1 knapsack with correlated values, greedy by priority: 6 instances of 50 items.

Each item has two weights (uniform on 1..20) and a value correlated with them (their sum plus a
uniform integer in -8..8, at least 1); the capacities are 20% and 35% of the total of each
weight. The program defines ``priority(values, weights,
capacity)`` (``weights`` of shape (50, 2), ``capacity`` of shape (2,)) returning one score per
item; items are taken in order of decreasing score (ties by index), each one if it still fits in
both dimensions. Score: minus the mean percentage gap to the optimum, computed exactly by dynamic
programming.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

ITEMS = 50
INSTANCES = 6
FRACTIONS = (0.2, 0.35)


def _optimum(values: np.ndarray, weights: np.ndarray, capacity: np.ndarray) -> float:
    """Exact optimum by dynamic programming over both capacities (trusted, computed once)."""
    rows, cols = int(capacity[0]) + 1, int(capacity[1]) + 1
    best = np.zeros((rows, cols))
    for value, (w0, w1) in zip(values, weights.astype(int)):
        if w0 < rows and w1 < cols:
            best[w0:, w1:] = np.maximum(best[w0:, w1:], best[: rows - w0, : cols - w1] + value)
    return float(best[-1, -1])


def _values(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    return np.maximum(weights.sum(axis=1) + rng.integers(-8, 9, ITEMS), 1.0)


def _make_instances():
    rng = np.random.default_rng(7602)
    instances = []
    for _ in range(INSTANCES):
        weights = rng.integers(1, 21, (ITEMS, 2)).astype(float)
        values = _values(rng, weights)
        capacity = np.floor(np.array(FRACTIONS) * weights.sum(axis=0))
        instances.append((values, weights, capacity, _optimum(values, weights, capacity)))
    return instances


DATA = _make_instances()


def _load(program_path, function: str):
    """Import the candidate under a fresh module name and return its ``function``."""
    random.seed(0)
    np.random.seed(0)
    spec = importlib.util.spec_from_file_location(f"candidate_{uuid.uuid4().hex}", program_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import a Python module from {program_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise AttributeError(f"the program must define a function {function}()")
    return fn


def _as_scores(raw, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The program's output as real numbers of ``shape`` (a scalar is broadcast), or an error."""
    if np.iscomplexobj(raw):
        raise TypeError(f"{what} returned complex numbers")
    values = np.asarray(raw, dtype=float)
    if values.shape == ():
        return np.full(shape, float(values))
    if values.shape != shape:
        raise ValueError(f"{what} returned shape {values.shape}, expected {shape}")
    return values


def _greedy_value(priority, values, weights, capacity) -> float:
    raw = priority(values.copy(), weights.copy(), capacity.copy())
    scores = _as_scores(raw, values.shape, "priority")
    if np.isnan(scores).any():
        raise ValueError("priority returned NaN")
    room, total = capacity.copy(), 0.0
    for item in np.argsort(-scores, kind="stable"):
        if np.all(weights[item] <= room):
            room -= weights[item]
            total += values[item]
    return total


def score(priority) -> dict[str, float]:
    """Metrics for a priority function (trusted code: the greedy fill is done here)."""
    gaps = []
    with np.errstate(all="ignore"):
        for values, weights, capacity, optimum in DATA:
            value = _greedy_value(priority, values, weights, capacity)
            gaps.append(100.0 * (1.0 - value / optimum))
    mean = float(np.mean(gaps))
    return {"combined_score": -mean, "gap_pct": mean}


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "priority"))
