# verdict: error
# expect: Permission denied|Operation not permitted|Invalid cross-device link
import os


def run():
    os.link("@@EVALUATOR@@", "evaluate_copy.py")
    print(open("evaluate_copy.py").read())
    return [3, 1, 4, 1, 5]
