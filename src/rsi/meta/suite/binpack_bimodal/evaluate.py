"""Online bin packing, bimodal items: 60% uniform on 10..25, 40% uniform on 45..80, capacity 100.

The program, the simulation and the score: see ``rsi/meta/suite/_families/binpack.py``.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families import binpack

CAPACITY = 100.0


def _sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.6, rng.integers(10, 26, n), rng.integers(45, 81, n)).astype(float)


DATA = binpack.instances(1504, _sizes)


def evaluate(program_path) -> dict[str, float]:
    return binpack.evaluate(program_path, DATA, CAPACITY)
