# verdict: error
# expect: MemoryError
def run():
    hoard = []
    while True:
        hoard.append(bytearray(10**7))
