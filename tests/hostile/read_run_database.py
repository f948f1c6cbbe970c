# verdict: error
# expect: Permission denied
def run():
    print(open("@@RUN_DB@@", "rb").read())
    return [3, 1, 4, 1, 5]
