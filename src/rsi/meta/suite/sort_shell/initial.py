"""Shell sort: insertion sort over a shrinking sequence of gaps."""


# EVOLVE-BLOCK-START
def sort(items):
    """Return the items in ascending order (items can only be compared with each other)."""
    a = list(items)
    n = len(a)
    gap = int(n / 2.0)
    while True:
        for i in range(gap, n):
            x = a[i]
            j = i
            while j >= gap and x < a[j - gap]:
                a[j] = a[j - gap]
                j -= gap
            a[j] = x
        if gap == 1:
            break
        gap = max(1, int(gap / 1.5))
    return a
# EVOLVE-BLOCK-END
