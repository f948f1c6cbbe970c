# verdict: error
# expect: Permission denied
import os


def run():
    os.symlink("@@HELDOUT@@", "heldout.json")
    print(open("heldout.json").read())
    return [3, 1, 4, 1, 5]
