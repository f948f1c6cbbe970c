"""Greedy knapsack with two weights per item: the order in which items are offered."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(values, weights, capacity):
    """One score per item; items are tried from the highest score down, each taken if it fits."""
    score = values - 0.5 * weights[:, 0] - 0.5 * weights[:, 1]
    return score
# EVOLVE-BLOCK-END
