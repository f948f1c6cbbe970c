"""A model for a one-dimensional curve."""

import numpy as np


# EVOLVE-BLOCK-START
def f(x: np.ndarray) -> np.ndarray:
    """Predict y for every x."""
    top = 1.0 * x
    bottom = 1.0 + 0.0 * x * x
    return top / bottom
# EVOLVE-BLOCK-END
