"""Online bin packing, FunSearch's Weibull items: Weibull(shape 3, scale 45), rounded, kept in
1..100, bin capacity 100.

The program, the simulation and the score: see ``rsi/meta/suite/_families/binpack.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import binpack

CAPACITY = 100.0
DATA = binpack.instances(1505, lambda rng, n: np.clip(np.round(45 * rng.weibull(3, n)), 1, 100))


def evaluate(program_path) -> dict[str, float]:
    return binpack.evaluate(program_path, DATA, CAPACITY)
