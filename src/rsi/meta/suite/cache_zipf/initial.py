"""Cache eviction: how much each cached entry is worth keeping."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(age, since_use, uses):
    """One score per cached entry; on a miss the lowest-scoring entry is evicted."""
    score = -1.0 * age + 2.0 * uses
    return score
# EVOLVE-BLOCK-END
