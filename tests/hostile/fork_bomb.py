# verdict: timeout
# alone: yes
# why: RLIMIT_NPROC (per worker) stops the growth; the wall timeout kills the tree
import os


def run():
    while True:
        try:
            os.fork()
        except OSError:
            pass
