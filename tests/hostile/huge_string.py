# verdict: error
# expect: larger than
def run():
    return ["x" * (50 * 2**20)]
