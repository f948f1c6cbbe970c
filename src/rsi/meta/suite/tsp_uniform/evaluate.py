"""Travelling salesman, greedy construction: 100 cities uniform in the unit square, 4 instances.

The program, the tour and the score: see ``rsi/meta/suite/_families/tsp.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import tsp

DATA = [tsp.distances(points) for points in tsp.uniform_cities(2601, cities=100)]


def evaluate(program_path) -> dict[str, float]:
    return tsp.evaluate(program_path, DATA)
