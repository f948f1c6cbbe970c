# verdict: timeout
import time


def run():
    time.sleep(10**6)
