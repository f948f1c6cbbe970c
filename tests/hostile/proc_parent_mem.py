# verdict: error
# expect: Permission denied|Operation not permitted
import os


def run():
    with open(f"/proc/{os.getppid()}/mem", "rb") as f:
        print(f.read(16))
    return [3, 1, 4, 1, 5]
