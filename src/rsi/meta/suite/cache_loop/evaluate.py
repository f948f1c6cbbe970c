"""Cache eviction: a 32-entry cache on a fixed trace of 2000 requests.

The trace interleaves a loop over 48 items (too many to keep them all) with requests for 8 hot
items and a little random noise over 200 other items. The program, the simulation and the score:
see ``rsi/meta/suite/_families/caching.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import caching

TRACE = caching.loop_trace(8602, loop=48, hot=8, others=(100, 300), below=(0.55, 0.9))


def evaluate(program_path) -> dict[str, float]:
    return caching.evaluate(program_path, TRACE)
