# verdict: error
# expect: larger than
import numpy as np


def run():
    return [np.zeros(10**7)]
