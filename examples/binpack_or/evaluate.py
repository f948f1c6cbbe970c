"""Trusted evaluator: online bin packing on OR-Library-like instances (FunSearch's OR3 task).

Split contract, as in ../binpack/evaluate.py:
produce(program_path) / score(data)  selection score, on generated instances: uniform integer
                                     sizes 20..100, capacity 150, 500 items (fixed seed); the
                                     candidate packs, trusted code checks and scores the packing
produce_holdout / score_holdout      FunSearch's published test sets, for reporting only;
                                     combined_score is minus the OR3 excess
evaluate / evaluate_holdout          both halves in one call (the plain contract, OpenEvolve)

The simulation, the instances, the test sets and the packing checks are shared with ../binpack
(binpacking.py, evaluate.py and data/ there), so this folder needs its sibling but nothing
installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path


def _load_sibling(filename: str):
    """Import ../binpack/<filename> by its path."""
    path = Path(__file__).resolve().parent.parent / "binpack" / filename
    prefix = "rsi_binpacking_" if filename == "binpacking.py" else "rsi_binpack_evaluate_"
    name = prefix + hashlib.sha1(str(path).encode()).hexdigest()[:12]  # shared with ../binpack
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


bp = _load_sibling("binpacking.py")
weibull = _load_sibling("evaluate.py")  # produce_packings, score_packings

# 20 instances x 500 items, the shape of OR3 itself: ~0.1 s a call for Best Fit, and ranks
# heuristics like OR3 does (Spearman 0.98 over 21 hand-written heuristics; see README.md).
TRAIN = bp.or_instances(n_instances=20, n_items=500, seed=2023)


def produce(program_path: str) -> list:
    """Untrusted side: the candidate's packing of every training instance."""
    return weibull.produce_packings(bp.load_priority(program_path), TRAIN)


def score(data: object) -> dict[str, float]:
    """Trusted side: validity, excess bins over the lower bound, and how it packs."""
    stats = weibull.score_packings(data, TRAIN)
    return {
        "combined_score": -stats["excess_pct"],
        "excess_pct": stats["excess_pct"],
        "bins_used": stats["bins_used"],
        # In [0, 1]: share of items put in the tightest bin that fits (Best Fit = 1).
        "behavior": stats["bestfit_agreement"],
        "new_bin_rate": stats["new_bin_rate"],
    }


def produce_holdout(program_path: str) -> dict:
    return weibull.produce_holdout(program_path)


def score_holdout(data: object) -> dict[str, float]:
    metrics = weibull.score_holdout(data)
    return {
        "combined_score": -metrics["or3_excess_pct"],
        "or3_excess_pct": metrics["or3_excess_pct"],
        "weibull5k_excess_pct": metrics["weibull5k_excess_pct"],
    }


def evaluate(program_path: str) -> dict[str, float]:
    return score(produce(program_path))


def evaluate_holdout(program_path: str) -> dict[str, float]:
    return score_holdout(produce_holdout(program_path))


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "initial.py")
    print("train  ", evaluate(target))
    print("holdout", evaluate_holdout(target))
