# verdict: error
# expect: produced an object of type
class Liar(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


def run():
    return [Liar(0.0)] * 5
