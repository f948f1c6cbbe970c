"""Reference: value minus a price per unit of each weight (a Lagrangian-style greedy), with the two
prices chosen by a small grid search on this problem's instances.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(values, weights, capacity):
    score = values - 1.5 * weights[:, 0] - 0.5 * weights[:, 1]
    return score
# EVOLVE-BLOCK-END
