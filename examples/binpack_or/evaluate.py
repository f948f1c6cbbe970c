"""Trusted evaluator: online bin packing on OR-Library-like instances (FunSearch's OR3 task).

evaluate(program_path)          -> selection score, on generated instances: uniform integer
                                   sizes 20..100, capacity 150, 500 items (fixed seed)
evaluate_holdout(program_path)  -> FunSearch's published test sets, for reporting only;
                                   combined_score is minus the OR3 excess

The simulation, the instances and the test sets are shared with ../binpack (binpacking.py and
data/ there), so this folder needs its sibling but nothing installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path


def _load_binpacking():
    """Import ../binpack/binpacking.py by its path."""
    path = Path(__file__).resolve().parent.parent / "binpack" / "binpacking.py"
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

# 20 instances x 500 items, the shape of OR3 itself: ~0.1 s a call for Best Fit, and ranks
# heuristics like OR3 does (Spearman 0.98 over 21 hand-written heuristics; see README.md).
TRAIN = bp.or_instances(n_instances=20, n_items=500, seed=2023)


def evaluate(program_path: str) -> dict[str, float]:
    priority = bp.load_priority(program_path)
    stats = bp.run(priority, TRAIN)
    return {
        "combined_score": -stats["excess_pct"],
        "excess_pct": stats["excess_pct"],
        "bins_used": stats["bins_used"],
        # In [0, 1]: share of items put in the tightest bin that fits (Best Fit = 1).
        "behavior": stats["bestfit_agreement"],
        "new_bin_rate": stats["new_bin_rate"],
    }


def evaluate_holdout(program_path: str) -> dict[str, float]:
    priority = bp.load_priority(program_path)
    sets = bp.test_sets()
    or3 = bp.run(priority, sets["OR3"])["excess_pct"]
    weibull = bp.run(priority, sets["Weibull 5k"])["excess_pct"]
    return {
        "combined_score": -or3,
        "or3_excess_pct": or3,
        "weibull5k_excess_pct": weibull,
    }


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "initial.py")
    print("train  ", evaluate(target))
    print("holdout", evaluate_holdout(target))
