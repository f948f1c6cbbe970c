"""Travelling salesman, greedy construction: 100 cities in 8 Gaussian clusters
(spread 0.05, centres uniform in the unit square), 4 instances.

The tour starts at city 0 and repeatedly moves to the unvisited city with the highest
``priority(dist, dist_to_start, isolation, remaining)``, where, for every unvisited city,
``dist`` is its distance from the current city, ``dist_to_start`` its distance from city 0,
``isolation`` its distance to the nearest other unvisited city, and ``remaining`` is the
fraction of cities still unvisited (a float). Score: minus the mean closed tour length.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

CITIES = 100
INSTANCES = 4


def _make_instances() -> list[np.ndarray]:
    rng = np.random.default_rng(2602)
    instances = []
    for _ in range(INSTANCES):
        centres = rng.random((8, 2))
        members = rng.integers(0, 8, CITIES)
        instances.append(np.clip(centres[members] + rng.normal(0.0, 0.05, (CITIES, 2)), 0.0, 1.0))
    return instances


def _distances(points: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))


DATA = [_distances(points) for points in _make_instances()]


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


def _tour_length(priority, dist: np.ndarray) -> float:
    n = len(dist)
    apart = dist + np.diag(np.full(n, np.inf))  # a city is not its own neighbour
    unvisited = np.ones(n, dtype=bool)
    unvisited[0] = False
    current, length = 0, 0.0
    for step in range(n - 1):
        left = np.flatnonzero(unvisited)
        isolation = apart[np.ix_(left, left)].min(axis=1) if len(left) > 1 else np.zeros(1)
        raw = priority(dist[current, left], dist[0, left], isolation, (n - 1 - step) / n)
        scores = _as_scores(raw, left.shape, "priority")
        pick = int(np.argmax(scores))  # the first NaN, if there is one
        if scores[pick] != scores[pick]:
            raise ValueError("priority returned NaN")
        nxt = int(left[pick])
        length += dist[current, nxt]
        unvisited[nxt] = False
        current = nxt
    return length + dist[current, 0]


def score(priority) -> dict[str, float]:
    """Metrics for a priority function (trusted code: tours are built and measured here)."""
    with np.errstate(all="ignore"):
        lengths = [_tour_length(priority, dist) for dist in DATA]
    mean = float(np.mean(lengths))
    return {"combined_score": -mean, "tour_length": mean}


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "priority"))
