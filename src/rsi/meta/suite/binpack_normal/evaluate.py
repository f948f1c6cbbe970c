"""Online bin packing, normal items: sizes Normal(35, 10), rounded, kept in 5..95, capacity 100.

The program, the simulation and the score: see ``rsi/meta/suite/_families/binpack.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import binpack

CAPACITY = 100.0
DATA = binpack.instances(1502, lambda rng, n: np.clip(np.round(rng.normal(35, 10, n)), 5, 95))


def evaluate(program_path) -> dict[str, float]:
    return binpack.evaluate(program_path, DATA, CAPACITY)
