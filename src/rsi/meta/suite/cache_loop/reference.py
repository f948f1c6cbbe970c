"""Reference: least frequently used (hand-written; the classic LFU policy)."""

import numpy as np


# EVOLVE-BLOCK-START
def priority(age, since_use, uses):
    score = uses
    return score
# EVOLVE-BLOCK-END
