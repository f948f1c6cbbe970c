"""Cache eviction with a priority function (the ``cache_*`` problems).

A cache of ``size`` entries serves a fixed trace of requests. On a miss with a full cache, the
entry with the lowest ``priority(age, since_use, uses)`` is evicted, where for every cached entry
``age`` is the number of requests since it was inserted, ``since_use`` the number since it was
last requested and ``uses`` how many times it was requested while cached (all float arrays).
Score: the hit rate in percent.

A problem gives its trace, made by one of the generators below from its parameters.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families.common import as_scores, load

SIZE = 32
LENGTH = 2000


def loop_trace(seed: int, loop: int, hot: int, others: tuple[int, int], below: tuple[float, float],
               length: int = LENGTH) -> list[int]:
    """A loop over ``loop`` items (drawn while a uniform draw is below ``below[0]``), requests for
    ``hot`` hot items (below ``below[1]``) and noise over the items ``others[0] .. others[1] - 1``."""
    rng = np.random.default_rng(seed)
    trace: list[int] = []
    loop_position = 0
    while len(trace) < length:
        draw = rng.random()
        if draw < below[0]:
            trace.append(1000 + loop_position % loop)
            loop_position += 1
        elif draw < below[1]:
            trace.append(int(rng.integers(0, hot)))
        else:
            trace.append(int(rng.integers(*others)))
    return trace


def zipf_trace(seed: int, items: int, exponent: float, scan: int, every: int, at: int,
               length: int = LENGTH) -> list[int]:
    """Zipf-popular requests over ``items`` items, and before every ``every``-th one (from the
    ``at``-th) a scan of ``scan`` fresh items that are never requested again."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, items + 1) ** exponent
    popular = rng.choice(items, length, p=weights / weights.sum())
    trace: list[int] = []
    fresh = 10_000
    for position, item in enumerate(popular):
        if position % every == at:
            trace.extend(range(fresh, fresh + scan))
            fresh += scan
        trace.append(int(item))
    return trace[:length]


def hits(priority, trace: list[int], size: int) -> int:
    """How many requests of ``trace`` a cache evicting by ``priority`` serves."""
    slot_of: dict[int, int] = {}
    item_in = np.full(size, -1)
    inserted, last_use, uses = np.zeros(size), np.zeros(size), np.zeros(size)
    count = 0
    for now, item in enumerate(trace):
        slot = slot_of.get(item)
        if slot is not None:
            count += 1
            last_use[slot] = now
            uses[slot] += 1
            continue
        if len(slot_of) < size:
            slot = len(slot_of)
        else:
            raw = priority(now - inserted, now - last_use, uses.copy())
            scores = as_scores(raw, (size,), "priority")
            if np.isnan(scores).any():
                raise ValueError("priority returned NaN")
            slot = int(np.argmin(scores))
            del slot_of[int(item_in[slot])]
        slot_of[item] = slot
        item_in[slot] = item
        inserted[slot] = last_use[slot] = now
        uses[slot] = 0.0
    return count


def score(priority, trace: list[int], size: int = SIZE) -> dict[str, float]:
    """Metrics for an eviction priority (trusted code: the cache is simulated here)."""
    with np.errstate(all="ignore"):
        served = hits(priority, trace, size)
    rate = 100.0 * served / len(trace)
    return {"combined_score": rate, "hit_rate_pct": rate}


def evaluate(program_path, trace: list[int], size: int = SIZE) -> dict[str, float]:
    return score(load(program_path, "priority"), trace, size)
