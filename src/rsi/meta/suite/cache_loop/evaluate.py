"""Cache eviction: a 32-entry cache on a fixed trace of 2000 requests.

The trace interleaves a loop over 48 items (too many to keep them all) with requests for 8 hot
items and a little random noise over 200 other items. On a miss with a full cache, the entry with
the lowest ``priority(age, since_use, uses)`` is evicted, where for every cached entry ``age`` is
the number of requests since it was inserted, ``since_use`` the number since it was last requested
and ``uses`` how many times it was requested while cached (all float arrays). Score: the hit rate
in percent.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

SIZE = 32
LENGTH = 2000


def _make_trace() -> list[int]:
    rng = np.random.default_rng(8602)
    trace, loop_position = [], 0
    while len(trace) < LENGTH:
        draw = rng.random()
        if draw < 0.55:
            trace.append(1000 + loop_position % 48)
            loop_position += 1
        elif draw < 0.9:
            trace.append(int(rng.integers(0, 8)))
        else:
            trace.append(int(rng.integers(100, 300)))
    return trace


TRACE = _make_trace()


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


def _hits(priority) -> int:
    slot_of: dict[int, int] = {}
    item_in = np.full(SIZE, -1)
    inserted, last_use, uses = np.zeros(SIZE), np.zeros(SIZE), np.zeros(SIZE)
    hits = 0
    for now, item in enumerate(TRACE):
        slot = slot_of.get(item)
        if slot is not None:
            hits += 1
            last_use[slot] = now
            uses[slot] += 1
            continue
        if len(slot_of) < SIZE:
            slot = len(slot_of)
        else:
            raw = priority(now - inserted, now - last_use, uses.copy())
            scores = _as_scores(raw, (SIZE,), "priority")
            if np.isnan(scores).any():
                raise ValueError("priority returned NaN")
            slot = int(np.argmin(scores))
            del slot_of[int(item_in[slot])]
        slot_of[item] = slot
        item_in[slot] = item
        inserted[slot] = last_use[slot] = now
        uses[slot] = 0.0
    return hits


def score(priority) -> dict[str, float]:
    """Metrics for an eviction priority (trusted code: the cache is simulated here)."""
    with np.errstate(all="ignore"):
        hits = _hits(priority)
    rate = 100.0 * hits / len(TRACE)
    return {"combined_score": rate, "hit_rate_pct": rate}


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "priority"))
