"""A model for a one-dimensional curve."""

import numpy as np


# EVOLVE-BLOCK-START
def f(x: np.ndarray) -> np.ndarray:
    """Predict y for every x."""
    bump = np.exp(-0.5 * x * x)
    return 0.3 * bump
# EVOLVE-BLOCK-END
