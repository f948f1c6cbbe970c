# verdict: error
# expect: Operation not permitted
import os


def run():
    os.kill(os.getppid(), 0)  # signal 0: the permission check alone
    return [3, 1, 4, 1, 5]
