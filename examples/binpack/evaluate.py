"""Trusted evaluator: online bin packing on Weibull instances (FunSearch, Nature 2023).

evaluate(program_path)          -> selection score, on generated Weibull instances (fixed seed)
evaluate_holdout(program_path)  -> FunSearch's published test sets, for reporting only

The packing contract and the excess formula are in binpacking.py, next to this file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path


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

# 3 instances x 5,000 items: ~0.15 s a call for Best Fit, and ranks heuristics like the
# Weibull 5k test set does (Spearman 0.995 over 21 hand-written heuristics; see README.md).
# FunSearch itself trained on 5 x 5,000. Fixed seed: the same instances on every call.
TRAIN = bp.weibull_instances(n_instances=3, n_items=5000, seed=2023)


def evaluate(program_path: str) -> dict[str, float]:
    priority = bp.load_priority(program_path)
    stats = bp.run(priority, TRAIN)
    return {
        "combined_score": -stats["excess_pct"],
        "excess_pct": stats["excess_pct"],
        "bins_used": stats["bins_used"],
        # In [0, 1]: share of items put in the tightest bin that fits (Best Fit = 1, Worst Fit
        # near 0). A cheap descriptor of *how* a heuristic packs, for MAP-Elites cells.
        "behavior": stats["bestfit_agreement"],
        "new_bin_rate": stats["new_bin_rate"],
    }


def evaluate_holdout(program_path: str) -> dict[str, float]:
    priority = bp.load_priority(program_path)
    sets = bp.test_sets()
    weibull = bp.run(priority, sets["Weibull 5k"])["excess_pct"]
    or3 = bp.run(priority, sets["OR3"])["excess_pct"]
    return {
        "combined_score": -weibull,
        "weibull5k_excess_pct": weibull,
        "or3_excess_pct": or3,
    }


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "initial.py")
    print("train  ", evaluate(target))
    print("holdout", evaluate_holdout(target))
