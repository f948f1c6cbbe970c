# verdict: error
# expect: produced an object of type
class Liar:
    def __float__(self):
        return 1e9

    def __index__(self):
        return 3


def run():
    return [Liar()] * 5
