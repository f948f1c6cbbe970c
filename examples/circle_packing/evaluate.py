"""Trusted evaluator: 26 circles in the unit square, maximise the sum of radii.

Split contract (rsi runs each half in its own process):
produce(program_path) -> data   untrusted, in the sandbox: the candidate's ``pack()``, a (26, 3)
                                array of rows (x, y, r), returned as 78 plain floats
score(data) -> metrics          trusted, in a process the candidate never touched: checks the
                                packing strictly and sums the radii

Validity, exact in float64 (tolerance 0): 26 rows of three finite numbers; every radius > 0;
every circle inside the square (r <= x <= 1 - r and r <= y <= 1 - r); no two circles overlap
(hypot(xi - xj, yi - yj) >= ri + rj, touching allowed). Anything else fails the candidate with
the reason. A candidate makes its own packing valid (shrinks radii by a hair's breadth), so
rounding in this check can never be what lets it pass.

References (sum of radii): previous best 2.634, AlphaEvolve (2025) 2.6358627564, ShinkaEvolve
(2025) about 2.63598.
"""

from __future__ import annotations

import itertools
import math
import sys
import types
from pathlib import Path

import numpy as np

N = 26
TOLERANCE = 0.0  # exact: a pair at distance ri + rj - 1e-15 is an overlap


def load_pack(program_path: str):
    """Import the program under a fresh module name and return its ``pack`` function."""
    path = Path(program_path)
    code = compile(path.read_text(), str(path), "exec")
    module = types.ModuleType(f"rsi_circles_candidate_{next(_counter)}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)
    finally:
        sys.modules.pop(module.__name__, None)
    pack = getattr(module, "pack", None)
    if not callable(pack):
        raise ValueError(f"{path} defines no function `pack()` returning a ({N}, 3) array of (x, y, r)")
    return pack


_counter = itertools.count()


def produce(program_path: str) -> list:
    """Untrusted side: the candidate's packing, as a flat list of 3 * N floats."""
    packing = np.asarray(load_pack(program_path)(), dtype=float)
    return packing.ravel().tolist()


def check(data: object) -> np.ndarray:
    """The packing as a (N, 3) array, or ValueError naming the first thing wrong with it."""
    if isinstance(data, np.ndarray):
        values = data
    elif isinstance(data, list | tuple) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                for v in data):
        values = np.array(data, dtype=float)
    else:
        raise ValueError(f"expected {3 * N} numbers (x, y, r for each of {N} circles), got {type(data).__name__}")
    if values.dtype.kind not in "fiu" or values.size != 3 * N:
        raise ValueError(f"expected {3 * N} numbers (x, y, r for each of {N} circles), got {values.size} "
                         f"of dtype {values.dtype}")
    p = values.astype(float).reshape(N, 3)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"circle {int(np.argmin(np.isfinite(p).all(axis=1)))} has a NaN or infinite value")
    x, y, r = p[:, 0], p[:, 1], p[:, 2]
    if np.any(r <= 0):
        raise ValueError(f"circle {int(np.argmin(r))} has radius {r.min()!r}: every radius must be > 0")
    for name, c in (("x", x), ("y", y)):
        outside = (c - r < -TOLERANCE) | (c + r > 1.0 + TOLERANCE)
        if np.any(outside):
            i = int(np.argmax(outside))
            raise ValueError(f"circle {i} leaves the unit square ({name}={c[i]!r}, r={r[i]!r})")
    for i in range(N):
        for j in range(i + 1, N):
            gap = math.hypot(x[i] - x[j], y[i] - y[j]) - (r[i] + r[j])
            if gap < -TOLERANCE:
                raise ValueError(f"circles {i} and {j} overlap by {-gap:.3g}")
    return p


def score(data: object) -> dict[str, float]:
    """Trusted side: strict validity, then the sum of radii."""
    p = check(data)
    r = p[:, 2]
    return {
        "combined_score": float(r.sum()),
        "sum_radii": float(r.sum()),
        "largest_radius": float(r.max()),
        "smallest_radius": float(r.min()),
        # a descriptor of the layout's shape: how unequal the circles are (0: all equal)
        "radius_spread": float(r.std() / r.mean()),
    }


def evaluate(program_path: str) -> dict[str, float]:
    return score(produce(program_path))


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "initial.py")
    print(evaluate(target))
