"""Does the training score rank heuristics the way the test sets do? Prints the tables in README.md.

    python fidelity.py           # the chosen training sets vs Weibull 5k and OR3 (~1 min)
    python fidelity.py --sweep   # other training sizes, 3 seeds each (~10 min)

The heuristics are hand-written reference points of very different quality; none is tuned on
the test sets. Not used by the evaluators.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import binpacking as bp  # noqa: E402


def best_fit(item, bins):
    return -(bins - item)


def first_fit(item, bins):
    return -np.arange(len(bins), dtype=float)


def worst_fit(item, bins):  # the emptiest open bin; a new bin only when none fits
    s = bins - item
    s[-1] = -1.0
    return s


def last_fit(item, bins):  # the most recently opened bin that fits
    s = np.arange(len(bins), dtype=float)
    s[-1] = -1.0
    return s


def almost_worst_fit(item, bins):
    s = worst_fit(item, bins)
    if len(s) > 2:
        s[np.argmax(s)] = -0.5
    return s


def hashed_fit(item, bins):  # an arbitrary but deterministic choice
    return np.sin(bins * 12.9898 + item * 78.233) % 1.0


def target_gap(t):  # leave a gap as close to t as possible
    return _named(lambda item, bins: -np.abs(bins - item - t), f"target_gap_{t}")


def gap_penalty(g, pen):  # Best Fit, but a gap in (0, g) costs pen
    def h(item, bins):
        r = bins - item
        return -r - pen * ((r > 0) & (r < g))
    return _named(h, f"gap_penalty_{g}_{pen}")


def tight_or_worst(t):  # a gap <= t if there is one, else Worst Fit
    def h(item, bins):
        r = bins - item
        s = np.where(r <= t, 1000.0 - r, r)
        s[-1] = -1.0
        return s
    return _named(h, f"tight{t}_or_worst")


def tight_worst_avoid(t, g):  # as tight_or_worst, but a new bin beats leaving a gap in (t, g)
    def h(item, bins):
        r = bins - item
        s = np.where(r <= t, 1000.0 - r, r)
        awkward = (r > t) & (r < g)
        s[awkward] = -100.0 - r[awkward]
        s[-1] = -50.0
        return s
    return _named(h, f"tight{t}_worst_avoid{g}")


def tight_best_above(t, g):  # a gap <= t, else Best Fit among gaps >= g, else a new bin
    def h(item, bins):
        r = bins - item
        s = np.where(r <= t, 1000.0 - r, np.where(r >= g, 500.0 - r, -r))
        s[-1] = 0.0
        return s
    return _named(h, f"tight{t}_best_above{g}")


def _named(f, name):
    f.__name__ = name
    return f


HEURISTICS = [
    best_fit, first_fit, worst_fit, almost_worst_fit, last_fit, hashed_fit, target_gap(5),
    gap_penalty(6, 5), gap_penalty(15, 20), tight_or_worst(0), tight_or_worst(2), tight_or_worst(5),
    tight_worst_avoid(2, 8), tight_worst_avoid(2, 12), tight_worst_avoid(4, 16),
    tight_worst_avoid(2, 16), tight_best_above(2, 25), tight_best_above(4, 20),
    tight_best_above(4, 25), tight_best_above(2, 30), tight_best_above(6, 25),
]


def _load_train(folder: str):
    path = Path(__file__).resolve().parent.parent / folder / "evaluate.py"
    spec = importlib.util.spec_from_file_location(f"fidelity_{folder}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TRAIN


def _rank(x):
    return np.argsort(np.argsort(x)).astype(float)


def _corr(a, b):
    return np.corrcoef(a, b)[0, 1], np.corrcoef(_rank(a), _rank(b))[0, 1]


def table() -> None:
    weibull_train, or_train = _load_train("binpack"), _load_train("binpack_or")
    tests = bp.test_sets()
    rows = []
    print("| heuristic | train Weibull | Weibull 5k | train OR | OR3 | behavior | s/eval |")
    print("|---|---|---|---|---|---|---|")
    for h in HEURISTICS:
        start = time.perf_counter()
        w = bp.run(h, weibull_train)
        seconds = time.perf_counter() - start
        row = [w["excess_pct"], bp.run(h, tests["Weibull 5k"])["excess_pct"],
               bp.run(h, or_train)["excess_pct"], bp.run(h, tests["OR3"])["excess_pct"]]
        rows.append(row)
        print(f"| {h.__name__} | " + " | ".join(f"{x:.2f}" for x in row)
              + f" | {w['bestfit_agreement']:.2f} | {seconds:.3f} |", flush=True)
    a = np.array(rows)
    pearson, spearman = _corr(a[:, 0], a[:, 1])
    print(f"Weibull: Pearson {pearson:.4f}, Spearman {spearman:.3f}")
    pearson, spearman = _corr(a[:, 2], a[:, 3])
    print(f"OR:      Pearson {pearson:.4f}, Spearman {spearman:.3f}")


def sweep() -> None:
    tests = bp.test_sets()
    for test_name, generate, sizes in [
        ("Weibull 5k", bp.weibull_instances,
         [(5, 1000), (10, 1000), (20, 500), (1, 5000), (2, 5000), (3, 5000), (5, 5000)]),
        ("OR3", bp.or_instances, [(5, 500), (10, 500), (20, 500), (40, 500)]),
    ]:
        test = np.array([bp.run(h, tests[test_name])["excess_pct"] for h in HEURISTICS])
        top = test < np.sort(test)[len(test) // 2 + 3]  # the better ~60%, where search happens
        print(f"\n{test_name}: training size | Pearson | Spearman | Spearman (better 60%) | seed sd")
        for n, m in sizes:
            train = np.array([[bp.run(h, generate(n, m, seed))["excess_pct"] for seed in (11, 12, 13)]
                              for h in HEURISTICS])
            stats = np.array([(*_corr(train[:, s], test), _corr(train[top, s], test[top])[1])
                              for s in range(3)]).mean(axis=0)
            sd = train.std(axis=1, ddof=1).mean()
            print(f"{n} x {m} | {stats[0]:.4f} | {stats[1]:.3f} | {stats[2]:.3f} | {sd:.3f}", flush=True)


if __name__ == "__main__":
    sweep() if "--sweep" in sys.argv else table()
