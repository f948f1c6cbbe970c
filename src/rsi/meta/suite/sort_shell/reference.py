"""Reference: Shell sort with Ciura's experimentally tuned gap sequence (hand-written)."""


# EVOLVE-BLOCK-START
def sort(items):
    a = list(items)
    n = len(a)
    for gap in [301, 132, 57, 23, 10, 4, 1]:
        for i in range(gap, n):
            x = a[i]
            j = i
            while j >= gap and x < a[j - gap]:
                a[j] = a[j - gap]
                j -= gap
            a[j] = x
    return a
# EVOLVE-BLOCK-END
