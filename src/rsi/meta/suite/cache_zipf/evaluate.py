"""Cache eviction: a 32-entry cache on a fixed trace of 2000 requests.

The trace mixes Zipf-popular items (exponent 0.9 over 400 items) with occasional scans of 60 fresh
items that are never requested again. The program, the simulation and the score: see
``rsi/meta/suite/_families/caching.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import caching

TRACE = caching.zipf_trace(8601, items=400, exponent=0.9, scan=60, every=500, at=250)


def evaluate(program_path) -> dict[str, float]:
    return caching.evaluate(program_path, TRACE)
