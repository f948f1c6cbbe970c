# verdict: timeout
def run():
    while True:
        pass
