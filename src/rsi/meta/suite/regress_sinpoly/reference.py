"""Reference: the target formula itself (the known optimum, MSE 0)."""

import numpy as np


# EVOLVE-BLOCK-START
def f(x: np.ndarray) -> np.ndarray:
    a = np.sin(2.0 * x)
    b = 0.3 * x * x
    return a + b - 0.5
# EVOLVE-BLOCK-END
