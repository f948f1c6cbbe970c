"""Reference: Polyak's heavy-ball method with its optimal constants for this spectrum.

With curvatures between mu = 1 and L = 100: learning rate 4 / (sqrt(L) + sqrt(mu))^2 and
momentum ((sqrt(L) - sqrt(mu)) / (sqrt(L) + sqrt(mu)))^2 (hand-written from the known bounds).
"""

import numpy as np


# EVOLVE-BLOCK-START
def update(x, grad, velocity, step):
    velocity = 0.669 * velocity - 0.033 * grad
    x = x + velocity
    return x, velocity
# EVOLVE-BLOCK-END
