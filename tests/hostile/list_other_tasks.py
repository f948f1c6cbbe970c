# verdict: error
# expect: Permission denied
import os


def run():
    print(os.listdir(".."), os.listdir("../.."))
    return [3, 1, 4, 1, 5]
