"""Reference: a (1+1) evolution strategy with the one-fifth success rule (Rechenberg).

Hand-written; the two step factors keep the success rate near one in five."""

import numpy as np


# EVOLVE-BLOCK-START
def minimise(f, x0, rng):
    x = x0.copy()
    fx = f(x)
    step = 0.5
    for i in range(300):
        y = x + step * rng.normal(size=x.shape)
        fy = f(y)
        if fy < fx:
            x, fx = y, fy
            step = step * 1.5
        else:
            step = step * 0.9
    return x
# EVOLVE-BLOCK-END
