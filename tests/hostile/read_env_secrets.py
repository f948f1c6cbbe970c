# verdict: ok
# score-max: 0
# why: secrets never reach the worker: not in os.environ, not in /proc/*/environ
import os


def run():
    print(dict(os.environ))
    for path in ("/proc/self/environ", f"/proc/{os.getppid()}/environ", "/proc/1/environ"):
        try:
            print(path, open(path, "rb").read())
        except OSError as exc:
            print(path, exc)
    return [0, 0, 0, 0, 0]
