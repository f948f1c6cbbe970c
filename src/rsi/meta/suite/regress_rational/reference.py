"""Reference: the target formula itself (the known optimum, MSE 0)."""

import numpy as np


# EVOLVE-BLOCK-START
def f(x: np.ndarray) -> np.ndarray:
    top = 2.0 * x
    bottom = 1.0 + 1.0 * x * x
    return top / bottom + 0.25 * x
# EVOLVE-BLOCK-END
