# verdict: error
# expect: Operation not permitted
# why: Landlock does not cover modes; seccomp denies chmod (a user owns the evaluator file)
import os


def run():
    os.chmod("@@EVALUATOR@@", 0o666)
    return [3, 1, 4, 1, 5]
