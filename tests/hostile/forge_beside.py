# verdict: ok
# mode: beside
# score-min: 1000
# why: KNOWN WEAKNESS of the plain contract: the score is computed in the candidate's process, so
#      it can forge it. The split contract (produce/score) exists for this; see forge_result_pipe
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
