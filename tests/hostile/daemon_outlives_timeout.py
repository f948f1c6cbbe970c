# verdict: timeout
import os
import signal
import time


def run():
    if os.fork() == 0:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            while True:
                time.sleep(0.05)
        os._exit(0)
    time.sleep(10**6)
