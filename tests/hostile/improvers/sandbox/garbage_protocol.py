# verdict: failed
# expect: answered next_step
"""Writes its own bytes on the host's reply pipe, to forge an answer from outside the protocol."""
import os
import sys

from rsi.improvers import Step


def next_step(ctx):
    fd = int(sys.argv[sys.argv.index("--resp") + 1])
    os.write(fd, b"\xff\xff\xff\xff{\"step\": {\"parent\": 1}}")
    return Step(parent=ctx.archive.best().id)
