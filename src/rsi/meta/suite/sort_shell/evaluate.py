"""Sorting with few comparisons: 4 fixed lists of 400 keys (random, nearly sorted, reversed runs,
many duplicates).

The program defines ``sort(items)`` returning a new list with the same items in ascending order.
Items are opaque: they can only be compared with ``<``, ``<=``, ``>``, ``>=``, and every comparison
is counted by the evaluator. The result must be a sorted permutation of the input (checked here).
Score: minus the mean number of comparisons divided by n log2 n.
"""

from __future__ import annotations

import importlib.util
import math
import random
import uuid

import numpy as np

SIZE = 400
BUDGET = SIZE * SIZE  # comparisons per list; past this the program is stopped


class BudgetExhausted(Exception):
    """Raised by a comparison once the program has used its whole comparison budget."""


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def tick(self) -> None:
        self.count += 1
        if self.count > BUDGET:
            raise BudgetExhausted(f"more than {BUDGET} comparisons for {SIZE} items")


class Item:
    """A key the program may compare but not read; each comparison is counted."""

    __slots__ = ("_key", "_counter")

    def __init__(self, key: int, counter: _Counter) -> None:
        self._key = key
        self._counter = counter

    def _other(self, other: object) -> int:
        if not isinstance(other, Item):
            raise TypeError("items can only be compared with other items")
        self._counter.tick()
        return other._key

    def __lt__(self, other: object) -> bool:
        return self._key < self._other(other)

    def __le__(self, other: object) -> bool:
        return self._key <= self._other(other)

    def __gt__(self, other: object) -> bool:
        return self._key > self._other(other)

    def __ge__(self, other: object) -> bool:
        return self._key >= self._other(other)

    __hash__ = object.__hash__


def _make_lists() -> list[list[int]]:
    rng = np.random.default_rng(5601)
    shuffled = rng.permutation(SIZE)
    nearly = np.arange(SIZE)
    swaps = rng.integers(0, SIZE, (20, 2))
    for i, j in swaps:
        nearly[i], nearly[j] = nearly[j], nearly[i]
    runs = np.concatenate([np.arange(start, start - 40, -1) for start in range(SIZE - 1, 0, -40)])
    duplicates = rng.integers(0, 30, SIZE)
    return [list(map(int, keys)) for keys in (shuffled, nearly, runs, duplicates)]


DATA = _make_lists()


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


def _comparisons(sort, keys: list[int]) -> int:
    counter = _Counter()
    items = [Item(key, counter) for key in keys]
    result = sort(list(items))
    used = counter.count
    if not isinstance(result, list) or len(result) != len(items):
        raise ValueError("sort must return a list with as many items as it was given")
    if sorted(map(id, result)) != sorted(map(id, items)):
        raise ValueError("sort must return a permutation of the items it was given")
    result_keys = [item._key for item in result]
    if any(a > b for a, b in zip(result_keys, result_keys[1:])):
        raise ValueError("sort returned the items out of order")
    return used


def score(sort) -> dict[str, float]:
    """Metrics for a sort (trusted code: comparisons are counted and the order is checked here)."""
    counts = [_comparisons(sort, keys) for keys in DATA]
    mean = float(np.mean(counts))
    return {
        "combined_score": -mean / (SIZE * math.log2(SIZE)),
        "comparisons": mean,
    }


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "sort"))
