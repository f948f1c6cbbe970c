"""Travelling salesman, greedy construction (the ``tsp_*`` problems).

The tour starts at city 0 and repeatedly moves to the unvisited city with the highest
``priority(dist, dist_to_start, isolation, remaining)``, where, for every unvisited city,
``dist`` is its distance from the current city, ``dist_to_start`` its distance from city 0,
``isolation`` its distance to the nearest other unvisited city, and ``remaining`` is the
fraction of cities still unvisited (a float). Score: minus the mean closed tour length.

A problem gives the distance matrices of its instances, made from the cities of
``uniform_cities`` or ``clustered_cities`` by ``distances``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families.common import as_scores, load

INSTANCES = 4


def uniform_cities(seed: int, cities: int, count: int = INSTANCES) -> list[np.ndarray]:
    """``count`` instances of ``cities`` points uniform in the unit square."""
    rng = np.random.default_rng(seed)
    return [rng.random((cities, 2)) for _ in range(count)]


def clustered_cities(seed: int, cities: int, clusters: int, spread: float,
                     count: int = INSTANCES) -> list[np.ndarray]:
    """``count`` instances of ``cities`` points in ``clusters`` Gaussian clusters of standard
    deviation ``spread``, centres uniform in the unit square (points clipped to it)."""
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(count):
        centres = rng.random((clusters, 2))
        members = rng.integers(0, clusters, cities)
        made.append(np.clip(centres[members] + rng.normal(0.0, spread, (cities, 2)), 0.0, 1.0))
    return made


def distances(points: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))


def tour_length(priority, dist: np.ndarray) -> float:
    n = len(dist)
    apart = dist + np.diag(np.full(n, np.inf))  # a city is not its own neighbour
    unvisited = np.ones(n, dtype=bool)
    unvisited[0] = False
    current, length = 0, 0.0
    for step in range(n - 1):
        left = np.flatnonzero(unvisited)
        isolation = apart[np.ix_(left, left)].min(axis=1) if len(left) > 1 else np.zeros(1)
        raw = priority(dist[current, left], dist[0, left], isolation, (n - 1 - step) / n)
        scores = as_scores(raw, left.shape, "priority")
        pick = int(np.argmax(scores))  # the first NaN, if there is one
        if scores[pick] != scores[pick]:
            raise ValueError("priority returned NaN")
        nxt = int(left[pick])
        length += dist[current, nxt]
        unvisited[nxt] = False
        current = nxt
    return length + dist[current, 0]


def score(priority, data: list[np.ndarray]) -> dict[str, float]:
    """Metrics for a priority function (trusted code: tours are built and measured here)."""
    with np.errstate(all="ignore"):
        lengths = [tour_length(priority, dist) for dist in data]
    mean = float(np.mean(lengths))
    return {"combined_score": -mean, "tour_length": mean}


def evaluate(program_path, data: list[np.ndarray]) -> dict[str, float]:
    return score(load(program_path, "priority"), data)
