# verdict: ok
# score-min: 1
# why: the control: an honest candidate gets the full score
def run():
    return [3, 1, 4, 1, 5]
