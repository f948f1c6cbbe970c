# verdict: error
# mode: beside
# expect: expected a list
# why: an object whose __eq__ always says yes stays in the candidate's process; the evaluator
#      gets an opaque handle, which is not a list of numbers
class Liar(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class Answers(list):
    def __eq__(self, other):
        return True


def run():
    return Answers([Liar(0.0)] * 5)
