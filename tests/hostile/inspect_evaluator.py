# verdict: error
# expect: OSError|Permission denied|could not get source
import inspect
import sys


def run():
    print(inspect.getsource(sys.modules["rsi_evaluator"]))
    return [3, 1, 4, 1, 5]
