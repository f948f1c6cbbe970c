"""A derivative-free minimiser: random search around the best point so far."""

import numpy as np


# EVOLVE-BLOCK-START
def minimise(f, x0, rng):
    """Search for a low value of f starting from x0; f may be called a limited number of times."""
    x = x0.copy()
    fx = f(x)
    step = 1.0
    for i in range(300):
        y = x + step * rng.normal(size=x.shape)
        fy = f(y)
        if fy < fx:
            x, fx = y, fy
            step = step * 1.0
        else:
            step = step * 1.0
    return x
# EVOLVE-BLOCK-END
