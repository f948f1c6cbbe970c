"""Online bin packing heuristic (FunSearch): score each bin for the arriving item."""
import numpy as np


# EVOLVE-BLOCK-START
def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Return one score per bin; the item goes to the highest-scoring bin (the first on ties).

    item: the size of the arriving item.
    bins: the remaining capacity of every bin that can take the item: the open bins in the
    order they were opened, then one empty bin (the full capacity) as the last element.
    Choosing the empty bin opens it. This seed is Best Fit: the smallest gap left wins.
    """
    return -(bins - item)
# EVOLVE-BLOCK-END
