"""Greedy graph colouring with a dynamic vertex order: 6 fixed random graphs of 70 vertices.

Three graphs are G(70, 0.15) (uniform random edges) and three are random geometric graphs (points
in the unit square, joined when closer than 0.22). Vertices are coloured one at a time with the
smallest colour not used by a neighbour; the next vertex is the uncoloured one with the highest
``priority(degree, saturation, free_degree)``, where for every uncoloured vertex ``degree`` is its
number of neighbours, ``saturation`` the number of distinct colours among its neighbours and
``free_degree`` its number of uncoloured neighbours (float arrays). Score: minus the mean over the
graphs of (colours used - 1 + size of the last colour class / 70): fewer colours always score
higher, and with as many colours a smaller last class is a step towards one colour fewer.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

VERTICES = 70


def _make_graphs() -> list[np.ndarray]:
    rng = np.random.default_rng(9601)
    graphs = []
    for kind in ("uniform", "geometric") * 3:
        if kind == "uniform":
            upper = np.triu(rng.random((VERTICES, VERTICES)) < 0.15, 1)
        else:
            points = rng.random((VERTICES, 2))
            close = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)) < 0.22
            upper = np.triu(close, 1)
        graphs.append(upper | upper.T)
    return sorted(graphs, key=lambda g: int(g.sum()))


DATA = _make_graphs()


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


def _colour(priority, adjacency: np.ndarray) -> tuple[int, int]:
    """Colours used and the size of the last colour class."""
    n = len(adjacency)
    degree = adjacency.sum(axis=1).astype(float)
    free_degree = degree.copy()
    saturation = np.zeros(n)
    colour = np.full(n, -1)
    neighbour_has = np.zeros((n, n + 1), dtype=bool)  # vertex x colour seen among its neighbours
    uncoloured = np.ones(n, dtype=bool)
    for _ in range(n):
        left = np.flatnonzero(uncoloured)
        raw = priority(degree[left], saturation[left], free_degree[left])
        scores = _as_scores(raw, left.shape, "priority")
        if np.isnan(scores).any():
            raise ValueError("priority returned NaN")
        vertex = int(left[np.argmax(scores)])
        chosen = int(np.argmin(neighbour_has[vertex]))  # smallest colour no neighbour has
        colour[vertex] = chosen
        uncoloured[vertex] = False
        neighbours = adjacency[vertex]
        free_degree[neighbours] -= 1.0
        saturation[neighbours & ~neighbour_has[:, chosen]] += 1.0
        neighbour_has[neighbours, chosen] = True
    used = int(colour.max()) + 1
    return used, int((colour == used - 1).sum())


def score(priority) -> dict[str, float]:
    """Metrics for a vertex-order priority (trusted code: the colouring is done here)."""
    with np.errstate(all="ignore"):
        results = [_colour(priority, graph) for graph in DATA]
    colours = np.array([used for used, _ in results], dtype=float)
    last = np.array([size for _, size in results], dtype=float)
    return {
        "combined_score": float(-np.mean(colours - 1.0 + last / VERTICES)),
        "colours": float(colours.mean()),
    }


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "priority"))
