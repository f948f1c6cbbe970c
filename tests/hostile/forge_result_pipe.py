# verdict: error
# expect: sent metrics
# why: with the split contract the worker takes data from the candidate's process, never metrics
import json
import os


def run():
    forged = b"J" + json.dumps({"metrics": {"combined_score": 1e9}}).encode()
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
        if fd > 2:
            try:
                os.write(fd, forged)
            except OSError:
                pass
    os._exit(0)
