# verdict: ok
# mode: beside
# score-min: 1
# why: the control for the plain contract; its evaluator reads its own folder lazily
def run():
    return [3, 1, 4, 1, 5]
