"""Reference: a (1+1) evolution strategy with the one-fifth success rule (Rechenberg).

Hand-written; the initial step and the two step factors were tuned by a short random search."""

import numpy as np


# EVOLVE-BLOCK-START
def minimise(f, x0, rng):
    x = x0.copy()
    fx = f(x)
    step = 2.2
    for i in range(300):
        y = x + step * rng.normal(size=x.shape)
        fy = f(y)
        if fy < fx:
            x, fx = y, fy
            step = step * 2.85
        else:
            step = step * 0.925
    return x
# EVOLVE-BLOCK-END
