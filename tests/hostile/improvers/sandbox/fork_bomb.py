# verdict: no-effect
"""Forks (and starts a process) on every step: processes that would outlive the improver's calls."""
import os
import subprocess

from rsi.improvers import Step


def next_step(ctx):
    started = 0
    for _ in range(50):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            while True:
                pass
        started += 1
    try:
        subprocess.Popen(["/bin/sleep", "1000"])
        started += 1
    except OSError:
        pass
    if started:
        raise RuntimeError(f"REACHED: started {started} processes")
    return Step(parent=ctx.archive.best().id)
