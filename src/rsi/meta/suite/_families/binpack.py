"""Online bin packing with a priority function (the ``binpack_*`` problems).

The program defines ``priority(item, bins)``. Items arrive one at a time; ``bins`` holds the
remaining capacity of every open bin the item fits in, followed by one empty bin (always last).
The item goes to the bin with the highest priority (the first one on ties); choosing the empty
bin opens a new bin. Score: minus the mean percentage of bins used above the lower bound
ceil(total size / capacity), over fixed instances.

A problem gives its capacity and its instances: ``instances(seed, sizes)``, where
``sizes(rng, count)`` draws the item sizes of one instance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rsi.meta.suite._families.common import as_scores, load

INSTANCES = 4
ITEMS = 400


def instances(seed: int, sizes: Callable[[np.random.Generator, int], np.ndarray],
              count: int = INSTANCES, items: int = ITEMS) -> list[np.ndarray]:
    """``count`` instances of ``items`` item sizes, drawn in turn from one generator."""
    rng = np.random.default_rng(seed)
    return [sizes(rng, items) for _ in range(count)]


def pack(priority, items: np.ndarray, capacity: float) -> int:
    """How many bins ``priority`` uses on ``items``."""
    remaining = np.empty(len(items))
    used = 0
    for item in items:
        fits = np.flatnonzero(remaining[:used] >= item)
        bins = np.empty(len(fits) + 1)
        bins[:-1] = remaining[fits]
        bins[-1] = capacity
        scores = as_scores(priority(float(item), bins.copy()), bins.shape, "priority")
        choice = int(np.argmax(scores))  # the first NaN, if there is one
        if scores[choice] != scores[choice]:
            raise ValueError("priority returned NaN")
        if choice == len(fits):
            remaining[used] = capacity - item
            used += 1
        else:
            remaining[fits[choice]] -= item
    return used


def score(priority, data: list[np.ndarray], capacity: float) -> dict[str, float]:
    """Metrics for a priority function (trusted code: the packing is simulated here)."""
    used, bound, excess = 0, 0, []
    with np.errstate(all="ignore"):
        for items in data:
            bins = pack(priority, items, capacity)
            lower = int(np.ceil(items.sum() / capacity))
            used, bound = used + bins, bound + lower
            excess.append(100.0 * (bins - lower) / lower)
    mean_excess = float(np.mean(excess))
    return {
        "combined_score": -mean_excess,
        "excess_pct": mean_excess,
        "bins_used": float(used),
        "lower_bound": float(bound),
    }


def evaluate(program_path, data: list[np.ndarray], capacity: float) -> dict[str, float]:
    return score(load(program_path, "priority"), data, capacity)
