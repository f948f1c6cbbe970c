# verdict: error|timeout
# expect: can't start new thread|wall time limit
# why: threads count in RLIMIT_NPROC, their stacks in RLIMIT_AS; when the address space runs out
#      first, a thread can fail after it was created and the starter waits: the wall timeout
import threading
import time


def run():
    threads = []
    while True:
        t = threading.Thread(target=time.sleep, args=(100,), daemon=True)
        t.start()
        threads.append(t)
