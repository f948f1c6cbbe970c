"""Greedy graph colouring with a dynamic vertex order (the ``colour_*`` problems).

Vertices are coloured one at a time with the smallest colour not used by a neighbour; the next
vertex is the uncoloured one with the highest ``priority(degree, saturation, free_degree)``, where
for every uncoloured vertex ``degree`` is its number of neighbours, ``saturation`` the number of
distinct colours among its neighbours and ``free_degree`` its number of uncoloured neighbours
(float arrays). Score: minus the mean over the graphs of (colours used - 1 + size of the last
colour class / vertices): fewer colours always score higher, and with as many colours a smaller
last class is a step towards one colour fewer.

A problem gives its graphs: ``graphs(seed, vertices, p, radius)``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families.common import as_scores, load


def graphs(seed: int, vertices: int, p: float, radius: float, pairs: int = 3) -> list[np.ndarray]:
    """``pairs`` pairs of adjacency matrices, a G(vertices, p) and a random geometric graph (points
    in the unit square, joined when closer than ``radius``), sorted by their number of edges."""
    rng = np.random.default_rng(seed)
    made = []
    for kind in ("uniform", "geometric") * pairs:
        if kind == "uniform":
            upper = np.triu(rng.random((vertices, vertices)) < p, 1)
        else:
            points = rng.random((vertices, 2))
            close = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)) < radius
            upper = np.triu(close, 1)
        made.append(upper | upper.T)
    return sorted(made, key=lambda g: int(g.sum()))


def colour(priority, adjacency: np.ndarray) -> tuple[int, int]:
    """Colours used and the size of the last colour class."""
    n = len(adjacency)
    degree = adjacency.sum(axis=1).astype(float)
    free_degree = degree.copy()
    saturation = np.zeros(n)
    colours = np.full(n, -1)
    neighbour_has = np.zeros((n, n + 1), dtype=bool)  # vertex x colour seen among its neighbours
    uncoloured = np.ones(n, dtype=bool)
    for _ in range(n):
        left = np.flatnonzero(uncoloured)
        raw = priority(degree[left], saturation[left], free_degree[left])
        scores = as_scores(raw, left.shape, "priority")
        if np.isnan(scores).any():
            raise ValueError("priority returned NaN")
        vertex = int(left[np.argmax(scores)])
        chosen = int(np.argmin(neighbour_has[vertex]))  # smallest colour no neighbour has
        colours[vertex] = chosen
        uncoloured[vertex] = False
        neighbours = adjacency[vertex]
        free_degree[neighbours] -= 1.0
        saturation[neighbours & ~neighbour_has[:, chosen]] += 1.0
        neighbour_has[neighbours, chosen] = True
    used = int(colours.max()) + 1
    return used, int((colours == used - 1).sum())


def score(priority, data: list[np.ndarray], vertices: int) -> dict[str, float]:
    """Metrics for a vertex-order priority (trusted code: the colouring is done here)."""
    with np.errstate(all="ignore"):
        results = [colour(priority, graph) for graph in data]
    used = np.array([count for count, _ in results], dtype=float)
    last = np.array([size for _, size in results], dtype=float)
    return {
        "combined_score": float(-np.mean(used - 1.0 + last / vertices)),
        "colours": float(used.mean()),
    }


def evaluate(program_path, data: list[np.ndarray], vertices: int) -> dict[str, float]:
    return score(load(program_path, "priority"), data, vertices)
