# verdict: error
# mode: beside
# expect: the candidate's process
# why: the guard runs a plain evaluator in a trusted process and the candidate in its own: the
#      candidate's process holds no pipe to the worker, so nothing it writes can pass for a result
import json
import os


def run():
    forged = b"J" + json.dumps({"metrics": {"combined_score": 1e9}}).encode()
    for fd in range(3, 256):  # every descriptor it may hold (its own /proc is not readable here)
        try:
            os.write(fd, forged)
        except OSError:
            pass
    os._exit(0)
