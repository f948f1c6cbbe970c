# verdict: error
# mode: beside
# expect: Permission denied
def run():
    with open("@@BESIDE_EVALUATOR@@", "a") as f:
        f.write("# pwned")
    return [3, 1, 4, 1, 5]
