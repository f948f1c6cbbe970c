# verdict: error
# expect: Permission denied
import os


def run():
    os.truncate("@@EVALUATOR@@", 0)
    return [3, 1, 4, 1, 5]
