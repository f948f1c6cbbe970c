# verdict: error
# expect: Permission denied
def run():
    with open("@@EVALUATOR@@", "a") as f:
        f.write("\ndef score(data):\n    return {'combined_score': 1e9}\n")
    return [3, 1, 4, 1, 5]
