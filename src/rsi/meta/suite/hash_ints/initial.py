"""An integer hash: mix the bits of each 64-bit key."""

import numpy as np


# EVOLVE-BLOCK-START
def hash_keys(keys: np.ndarray) -> np.ndarray:
    """keys: uint64 array. Return one integer hash per key."""
    h = keys * 3
    h = h ^ (h >> 60)
    return h
# EVOLVE-BLOCK-END
