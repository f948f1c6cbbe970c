"""Online bin packing, skewed items: sizes triangular on 10..90 (mode 40), rounded, capacity 120.

The program, the simulation and the score: see ``rsi/meta/suite/_families/binpack.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import binpack

CAPACITY = 120.0
DATA = binpack.instances(1503, lambda rng, n: np.round(rng.triangular(10, 40, 90, n)))


def evaluate(program_path) -> dict[str, float]:
    return binpack.evaluate(program_path, DATA, CAPACITY)
