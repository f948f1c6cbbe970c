"""Greedy graph colouring: which uncoloured vertex to colour next."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(degree, saturation, free_degree):
    """One score per uncoloured vertex; the highest-scoring vertex is coloured next."""
    score = -degree + 0.5 * saturation
    return score
# EVOLVE-BLOCK-END
