# verdict: failed
# expect: did not answer observe
"""Spins the CPU in observe, in pure Python and under `except BaseException`."""


from rsi.improvers import Step


def next_step(ctx):
    return Step(parent=ctx.archive.best().id)


def observe(ctx, step, outcome):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
