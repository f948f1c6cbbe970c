# verdict: error
# expect: Operation not permitted|Invalid argument
import os


def run():
    os.setuid(0)
    return [3, 1, 4, 1, 5]
