# verdict: timeout
# alone: yes
import threading


def spin():
    while True:
        pass


def run():
    for _ in range(4):
        threading.Thread(target=spin, daemon=True).start()
    spin()
