"""Online bin packing, bimodal items: 60% uniform on 10..25, 40% uniform on 45..80, capacity 100.

The program defines ``priority(item, bins)``. Items arrive one at a time; ``bins`` holds the
remaining capacity of every open bin the item fits in, followed by one empty bin (always last).
The item goes to the bin with the highest priority (the first one on ties); choosing the empty
bin opens a new bin. Score: minus the mean percentage of bins used above the lower bound
ceil(total size / capacity), over fixed instances.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

CAPACITY = 100.0
INSTANCES = 4
ITEMS = 400


def _make_instances() -> list[np.ndarray]:
    rng = np.random.default_rng(1504)
    return [
        np.where(
            rng.random(ITEMS) < 0.6, rng.integers(10, 26, ITEMS), rng.integers(45, 81, ITEMS)
        ).astype(float)
        for _ in range(INSTANCES)
    ]


DATA = _make_instances()


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


def _pack(priority, items: np.ndarray) -> int:
    remaining = np.empty(len(items))
    used = 0
    for item in items:
        fits = np.flatnonzero(remaining[:used] >= item)
        bins = np.empty(len(fits) + 1)
        bins[:-1] = remaining[fits]
        bins[-1] = CAPACITY
        scores = _as_scores(priority(float(item), bins.copy()), bins.shape, "priority")
        choice = int(np.argmax(scores))  # the first NaN, if there is one
        if scores[choice] != scores[choice]:
            raise ValueError("priority returned NaN")
        if choice == len(fits):
            remaining[used] = CAPACITY - item
            used += 1
        else:
            remaining[fits[choice]] -= item
    return used


def score(priority) -> dict[str, float]:
    """Metrics for a priority function (trusted code: the packing is simulated here)."""
    used, bound, excess = 0, 0, []
    with np.errstate(all="ignore"):
        for items in DATA:
            bins = _pack(priority, items)
            lower = int(np.ceil(items.sum() / CAPACITY))
            used, bound = used + bins, bound + lower
            excess.append(100.0 * (bins - lower) / lower)
    mean_excess = float(np.mean(excess))
    return {
        "combined_score": -mean_excess,
        "excess_pct": mean_excess,
        "bins_used": float(used),
        "lower_bound": float(bound),
    }


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "priority"))
