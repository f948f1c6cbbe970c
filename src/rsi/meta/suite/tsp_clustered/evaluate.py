"""Travelling salesman, greedy construction: 100 cities in 8 Gaussian clusters
(spread 0.05, centres uniform in the unit square), 4 instances.

The program, the tour and the score: see ``rsi/meta/suite/_families/tsp.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import tsp

DATA = [tsp.distances(points) for points in tsp.clustered_cities(2602, cities=100, clusters=8, spread=0.05)]


def evaluate(program_path) -> dict[str, float]:
    return tsp.evaluate(program_path, DATA)
