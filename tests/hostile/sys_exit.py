# verdict: error
# expect: SystemExit
import sys


def run():
    sys.exit(0)
