# verdict: ok
# score-min: 1
# why: the daemon escapes the process group; the worker, a child subreaper, sweeps it
import os
import time


def run():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(0.05)
        os._exit(0)
    time.sleep(0.1)
    return [3, 1, 4, 1, 5]
