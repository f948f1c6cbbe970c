"""Reference: the SplitMix64 finaliser (a well-known 64-bit mixing function)."""

import numpy as np


# EVOLVE-BLOCK-START
def hash_keys(keys: np.ndarray) -> np.ndarray:
    h = keys ^ (keys >> 30)
    h = h * 0xBF58476D1CE4E5B9
    h = h ^ (h >> 27)
    h = h * 0x94D049BB133111EB
    h = h ^ (h >> 31)
    return h
# EVOLVE-BLOCK-END
