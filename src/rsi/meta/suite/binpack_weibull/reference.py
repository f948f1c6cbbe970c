"""Reference: best fit, minus a penalty for leaving a small unusable gap, plus a bonus for
near-exact fits.

Hand-written form; the four constants were tuned by a short random search on this problem's
instances.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    residual = bins - item
    small_gap = (residual > 0) & (residual < 21.5)
    score = -residual - 35.5 * small_gap + 36.5 * np.exp(-residual / 1.0)
    return score
# EVOLVE-BLOCK-END
