# verdict: error
# expect: Operation not permitted
import os


def run():
    os.kill(-1, 0)  # signal 0: would every process the candidate may signal be reached?
    return [3, 1, 4, 1, 5]
