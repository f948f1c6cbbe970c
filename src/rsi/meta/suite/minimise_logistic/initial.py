"""One step of a gradient-based optimiser."""

import numpy as np


# EVOLVE-BLOCK-START
def update(x, grad, velocity, step):
    """Return the next point and the velocity to carry into the next step."""
    velocity = 0.0 * velocity - 0.002 * grad
    x = x + velocity
    return x, velocity
# EVOLVE-BLOCK-END
