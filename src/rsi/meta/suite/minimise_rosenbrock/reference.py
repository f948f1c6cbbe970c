"""Reference: Nelder-Mead simplex search (hand-written, standard coefficients), restarted
around the best point whenever the simplex collapses.
"""

import numpy as np


# EVOLVE-BLOCK-START
def minimise(f, x0, rng):
    n = len(x0)
    simplex = [x0.copy()] + [x0 + 0.5 * np.eye(n)[i] for i in range(n)]
    values = [f(x) for x in simplex]
    while True:
        order = np.argsort(values)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if np.max(np.abs(np.array(simplex[1:]) - simplex[0])) < 1e-9:
            simplex = [simplex[0]] + [simplex[0] + 0.1 * np.eye(n)[i] for i in range(n)]
            values = [values[0]] + [f(x) for x in simplex[1:]]
            continue
        centre = np.mean(simplex[:-1], axis=0)
        reflected = centre + (centre - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centre + 2.0 * (centre - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centre + 0.5 * (simplex[-1] - centre)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex = [simplex[0]] + [simplex[0] + 0.5 * (x - simplex[0]) for x in simplex[1:]]
                values = [values[0]] + [f(x) for x in simplex[1:]]
# EVOLVE-BLOCK-END
