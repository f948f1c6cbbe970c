"""Reference: the target formula itself (the known optimum, MSE 0)."""

import numpy as np


# EVOLVE-BLOCK-START
def f(x: np.ndarray) -> np.ndarray:
    right = np.exp(-(x - 1.0) * (x - 1.0))
    left = np.exp(-2.0 * (x + 1.5) * (x + 1.5))
    return 1.5 * right - left
# EVOLVE-BLOCK-END
