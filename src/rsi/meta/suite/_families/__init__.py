"""The trusted code of the suite's problems, one module per family (a problem's ``kind``).

Each module holds a family's instance generators, its simulation and its score; each problem's
``evaluate.py`` holds only its instance parameters and calls its family's ``evaluate``:

    binpack.py       binpack_*          online bin packing by priority
    caching.py       cache_*            cache eviction by priority
    colouring.py     colour_*           greedy graph colouring by vertex priority
    hashing.py       hash_*             hashing keys into buckets
    knapsack.py      knapsack_*         two-constraint 0/1 knapsack, greedy by priority
    minimisation.py  minimise_*         gradient steps and black-box minimisation
    regression.py    regress_*          symbolic regression
    scheduling.py    sched_*            single-machine weighted tardiness by dispatch rule
    sorting.py       sort_*             sorting with counted comparisons
    tsp.py           tsp_*              travelling salesman, greedy construction
    common.py        all                importing the program, reading its output
"""
