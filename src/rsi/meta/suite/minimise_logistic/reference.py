"""Reference: heavy-ball momentum with a learning rate and momentum tuned by a small grid search."""

import numpy as np


# EVOLVE-BLOCK-START
def update(x, grad, velocity, step):
    velocity = 0.8 * velocity - 1.0 * grad
    x = x + velocity
    return x, velocity
# EVOLVE-BLOCK-END
