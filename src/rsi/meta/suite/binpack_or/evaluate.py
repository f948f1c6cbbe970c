"""Online bin packing, OR-Library-like items: sizes uniform on 20..100, bin capacity 150.

The program, the simulation and the score: see ``rsi/meta/suite/_families/binpack.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import binpack

CAPACITY = 150.0
DATA = binpack.instances(1501, lambda rng, n: rng.integers(20, 101, n).astype(float))


def evaluate(program_path) -> dict[str, float]:
    return binpack.evaluate(program_path, DATA, CAPACITY)
