"""Reference: 64-bit FNV-1a (a well-known string hash), then a xor-shift to fold high bits down."""

import numpy as np


# EVOLVE-BLOCK-START
def hash_keys(chars: np.ndarray) -> np.ndarray:
    h = np.full(len(chars), 14695981039346656037, dtype=np.uint64)
    for k in range(chars.shape[1]):
        h = (h ^ chars[:, k]) * 1099511628211
    h = h ^ (h >> 29)
    return h
# EVOLVE-BLOCK-END
