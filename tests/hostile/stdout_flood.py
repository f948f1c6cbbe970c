# verdict: error
# expect: File too large
def run():
    while True:
        print("x" * 1000)
