# verdict: error
# expect: Permission denied
def run():
    print(open("@@EVALUATOR@@").read())
    return [3, 1, 4, 1, 5]
