"""Dispatch rule for one machine: which waiting job runs next."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(processing, weight, due, now):
    """One score per waiting job; the highest-scoring job runs next."""
    score = -due + 0.5 * weight
    return score
# EVOLVE-BLOCK-END
