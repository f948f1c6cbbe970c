# verdict: error
# expect: MemoryError
# alone: yes
def run():
    hoard = []
    while True:
        hoard.append(bytearray(5 * 10**7))
