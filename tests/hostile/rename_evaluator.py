# verdict: error
# expect: Permission denied|Operation not permitted
import os


def run():
    os.rename("@@EVALUATOR@@", "@@EVALUATOR@@.bak")
    return [3, 1, 4, 1, 5]
