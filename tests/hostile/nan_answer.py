# verdict: ok
# score-max: 0
def run():
    return [float("nan")] * 5
