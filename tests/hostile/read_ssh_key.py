# verdict: error
# expect: Permission denied
def run():
    print(open("@@SSH_KEY@@").read())
    return [3, 1, 4, 1, 5]
