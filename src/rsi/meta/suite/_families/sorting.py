"""Sorting with few comparisons (the ``sort_*`` problems).

The program defines ``sort(items)`` returning a new list with the same items in ascending order.
Items are opaque: they can only be compared with ``<``, ``<=``, ``>``, ``>=``, and every comparison
is counted by the evaluator. The result must be a sorted permutation of the input (checked here).
Score: minus the mean number of comparisons divided by n log2 n.

A problem gives its lists of keys, e.g. ``mixed_lists(seed, size)``.
"""

from __future__ import annotations

import math

import numpy as np

from rsi.meta.suite._families.common import load


class BudgetExhausted(Exception):
    """Raised by a comparison once the program has used its whole comparison budget."""


class Counter:
    def __init__(self, budget: int, size: int) -> None:
        self.count = 0
        self.budget = budget
        self.size = size

    def tick(self) -> None:
        self.count += 1
        if self.count > self.budget:
            raise BudgetExhausted(f"more than {self.budget} comparisons for {self.size} items")


class Item:
    """A key the program may compare but not read; each comparison is counted."""

    __slots__ = ("_key", "_counter")

    def __init__(self, key: int, counter: Counter) -> None:
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


def mixed_lists(seed: int, size: int) -> list[list[int]]:
    """Four lists of ``size`` keys: a random permutation, a sorted list with 20 random swaps,
    descending runs of 40, and 30 distinct values in random order (many duplicates)."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(size)
    nearly = np.arange(size)
    swaps = rng.integers(0, size, (20, 2))
    for i, j in swaps:
        nearly[i], nearly[j] = nearly[j], nearly[i]
    runs = np.concatenate([np.arange(start, start - 40, -1) for start in range(size - 1, 0, -40)])
    duplicates = rng.integers(0, 30, size)
    return [list(map(int, keys)) for keys in (shuffled, nearly, runs, duplicates)]


def comparisons(sort, keys: list[int]) -> int:
    """How many comparisons ``sort`` makes on ``keys`` (at most len(keys)^2), once its result is
    checked."""
    counter = Counter(len(keys) * len(keys), len(keys))
    items = [Item(key, counter) for key in keys]
    result = sort(list(items))
    used = counter.count
    if not isinstance(result, list) or len(result) != len(items):
        raise ValueError("sort must return a list with as many items as it was given")
    if sorted(map(id, result)) != sorted(map(id, items)):
        raise ValueError("sort must return a permutation of the items it was given")
    result_keys = [item._key for item in result]
    if any(a > b for a, b in zip(result_keys, result_keys[1:], strict=False)):
        raise ValueError("sort returned the items out of order")
    return used


def score(sort, data: list[list[int]]) -> dict[str, float]:
    """Metrics for a sort (trusted code: comparisons are counted and the order is checked here)."""
    counts = [comparisons(sort, keys) for keys in data]
    mean = float(np.mean(counts))
    size = len(data[0])
    return {
        "combined_score": -mean / (size * math.log2(size)),
        "comparisons": mean,
    }


def evaluate(program_path, data: list[list[int]]) -> dict[str, float]:
    return score(load(program_path, "sort"), data)
