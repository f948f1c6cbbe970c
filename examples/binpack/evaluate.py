"""Trusted evaluator: online bin packing on Weibull instances (FunSearch, Nature 2023).

Split contract (rsi runs each half in its own process):
produce(program_path) -> data   untrusted, in the sandbox: the candidate packs every training
                                instance online; data = one bin assignment per instance
score(data) -> metrics          trusted, in a process the candidate never touched: checks that
                                every packing is valid (each item in exactly one bin, bins
                                opened in order, none over capacity) and computes the excess
produce_holdout / score_holdout the same on FunSearch's published test sets (reporting only)

evaluate(program_path) and evaluate_holdout(program_path) = score(produce(...)): the plain
contract, for OpenEvolve and for a quick check by hand. The packing contract and the excess
formula are in binpacking.py, next to this file.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np


def _load_binpacking():
    """Import binpacking.py by its path, so this folder runs without being installed."""
    path = Path(__file__).resolve().parent / "binpacking.py"
    name = "rsi_binpacking_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


bp = _load_binpacking()

# 2 instances x 5,000 items: ~0.1 s a call for Best Fit, and ranks heuristics like the
# Weibull 5k test set does (Spearman 0.993 over 21 hand-written heuristics, against 0.995 for
# 3 instances at 1.5x the cost; see README.md). FunSearch itself trained on 5 x 5,000.
# Fixed seed: the same instances on every call.
TRAIN = bp.weibull_instances(n_instances=2, n_items=5000, seed=2023)


HOLDOUT_SETS = ("Weibull 5k", "OR3")


def produce_packings(priority, instances) -> list:
    """The bin assignment of every item of every instance, packed online by ``priority``."""
    return [bp.pack(priority, inst.items, inst.capacity).assignment for inst in instances]


def score_packings(data: object, instances) -> dict[str, float]:
    """Check packings that came from untrusted code and summarise them like ``bp.run``.

    ``data`` must be one assignment per instance (a list or an integer array of bin indices);
    ``bp.bins_used`` rejects any packing that leaves an item out, opens bins out of order or
    overfills a bin.
    """
    if not isinstance(data, list) or len(data) != len(instances):
        raise ValueError(f"expected a list of {len(instances)} packings, one per instance")
    used, bounds, agreement, new_bin_rate = [], [], [], []
    for instance, assignment in zip(instances, data, strict=True):  # lengths checked above
        assignment = np.asarray(assignment)
        n_bins = bp.bins_used(instance, assignment)
        used.append(n_bins)
        bounds.append(bp.lower_bound(instance))
        agreement.append(tightest_share(instance, assignment))
        new_bin_rate.append(n_bins / instance.items.size)
    return {
        "excess_pct": bp.excess_pct(used, bounds),
        "bins_used": float(np.mean(used)),
        "bestfit_agreement": float(np.mean(agreement)),
        "new_bin_rate": float(np.mean(new_bin_rate)),
    }


def tightest_share(instance, assignment: np.ndarray) -> float:
    """Replay a valid packing: the share of items put in the fitting bin with the least room
    (the one empty bin that a heuristic is offered counts as fitting), as ``bp.pack`` counts."""
    capacity, items = instance.capacity, instance.items.tolist()
    room: list[int] = []  # remaining capacity, by bin
    ordered: list[int] = []  # the same, sorted
    tight = 0
    for item, b in zip(items, assignment.tolist(), strict=True):  # bins_used checked the shape
        k = bisect.bisect_left(ordered, item)
        least = ordered[k] if k < len(ordered) else capacity
        if b == len(room):
            room.append(capacity)
        else:
            del ordered[bisect.bisect_left(ordered, room[b])]
        tight += room[b] == least
        room[b] -= item
        bisect.insort(ordered, room[b])
    return tight / len(items) if items else 1.0


def produce(program_path: str) -> list:
    """Untrusted side: the candidate's packing of every training instance."""
    return produce_packings(bp.load_priority(program_path), TRAIN)


def score(data: object) -> dict[str, float]:
    """Trusted side: validity, excess bins over the lower bound, and how it packs."""
    stats = score_packings(data, TRAIN)
    return {
        "combined_score": -stats["excess_pct"],
        "excess_pct": stats["excess_pct"],
        "bins_used": stats["bins_used"],
        # In [0, 1]: share of items put in the tightest bin that fits (Best Fit = 1, Worst Fit
        # near 0). A cheap descriptor of *how* a heuristic packs, for MAP-Elites cells.
        "behavior": stats["bestfit_agreement"],
        "new_bin_rate": stats["new_bin_rate"],
    }


def produce_holdout(program_path: str) -> dict:
    priority = bp.load_priority(program_path)
    sets = bp.test_sets()
    return {name: produce_packings(priority, sets[name]) for name in HOLDOUT_SETS}


def score_holdout(data: object) -> dict[str, float]:
    sets = bp.test_sets()
    if not isinstance(data, dict) or set(data) != set(HOLDOUT_SETS):
        raise ValueError(f"expected packings for {', '.join(HOLDOUT_SETS)}")
    weibull = score_packings(data["Weibull 5k"], sets["Weibull 5k"])["excess_pct"]
    or3 = score_packings(data["OR3"], sets["OR3"])["excess_pct"]
    return {
        "combined_score": -weibull,
        "weibull5k_excess_pct": weibull,
        "or3_excess_pct": or3,
    }


def evaluate(program_path: str) -> dict[str, float]:
    return score(produce(program_path))


def evaluate_holdout(program_path: str) -> dict[str, float]:
    return score_holdout(produce_holdout(program_path))


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "initial.py")
    print("train  ", evaluate(target))
    print("holdout", evaluate_holdout(target))
