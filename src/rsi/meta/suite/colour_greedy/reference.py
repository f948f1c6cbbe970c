"""Reference: DSatur (Brelaz 1979): most distinct neighbour colours first, ties by degree."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(degree, saturation, free_degree):
    score = 100.0 * saturation + degree
    return score
# EVOLVE-BLOCK-END
