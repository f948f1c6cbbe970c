"""Sorting with few comparisons: 4 fixed lists of 400 keys (random, nearly sorted, reversed runs,
many duplicates).

At most 400^2 comparisons per list. The program, the counting and the score: see
``rsi/meta/suite/_families/sorting.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import sorting

DATA = sorting.mixed_lists(5601, size=400)


def evaluate(program_path) -> dict[str, float]:
    return sorting.evaluate(program_path, DATA)
