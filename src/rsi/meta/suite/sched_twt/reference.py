"""Reference: the Apparent Tardiness Cost rule (Vepsalainen and Morton) with look-ahead k = 2.

A classic hand-written dispatch rule for weighted tardiness: weighted shortest processing time,
discounted exponentially by the slack of each job.
"""

import numpy as np


# EVOLVE-BLOCK-START
def priority(processing, weight, due, now):
    slack = np.maximum(due - processing - now, 0.0)
    score = weight / processing * np.exp(-slack / (2.0 * processing.mean()))
    return score
# EVOLVE-BLOCK-END
