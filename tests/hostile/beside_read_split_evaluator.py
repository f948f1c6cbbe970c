# verdict: error
# mode: beside
# expect: Permission denied
# why: a beside evaluator's own folder is readable; another problem's is not
def run():
    print(open("@@EVALUATOR@@").read())
    return [3, 1, 4, 1, 5]
