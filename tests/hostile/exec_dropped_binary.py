# verdict: error
# expect: Permission denied
import os
import subprocess


def run():
    fd = os.open("payload.sh", os.O_CREAT | os.O_WRONLY, 0o755)
    os.write(fd, b"#!/bin/sh\necho escaped\n")
    os.close(fd)
    subprocess.run(["./payload.sh"], check=True)
    return [3, 1, 4, 1, 5]
