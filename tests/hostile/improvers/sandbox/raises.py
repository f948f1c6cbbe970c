# verdict: failed
# expect: ZeroDivisionError
"""A plain bug."""


def next_step(ctx):
    return 1 / 0
