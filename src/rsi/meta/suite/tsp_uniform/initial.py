"""Greedy tour construction: which unvisited city to visit next."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(dist, dist_to_start, isolation, remaining):
    """One score per unvisited city; the tour moves to the highest-scoring one."""
    score = -dist - 0.3 * dist_to_start
    return score
# EVOLVE-BLOCK-END
