"""Online bin packing heuristic: score the bins an arriving item could go into."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """One score per candidate bin (remaining capacities; the last one is a fresh empty bin).

    The item goes to the highest-scoring bin.
    """
    residual = bins - item
    small_gap = (residual > 0) & (residual < 20.0)
    score = -residual + 20.0 * small_gap
    return score
# EVOLVE-BLOCK-END
