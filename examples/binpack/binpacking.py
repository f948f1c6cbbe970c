"""Online bin packing, FunSearch style: the simulation, the instances and the score.

Pure functions, shared by ``examples/binpack`` and ``examples/binpack_or`` (each loads this
file by its path, so neither folder needs to be installed or on ``sys.path``).

The contract with a heuristic ``priority(item, bins) -> scores``:

* Items arrive one at a time, in order, and each is placed before the next is seen.
* ``item`` is the size of the arriving item, a Python ``float``.
* ``bins`` is a fresh 1-D float64 array (a copy: changing it changes nothing) holding the
  remaining capacity of every bin that can take the item: the open bins with
  ``remaining >= item``, in the order they were opened, followed by exactly ONE empty bin
  (remaining == capacity) as the last element.
* The heuristic returns one finite real score per element of ``bins`` (same shape). The item
  goes to the highest-scoring bin, the first one on ties; choosing the empty bin opens it.

FunSearch's harness passes every bin that fits, including every still-empty bin (it
preallocates one bin per item). We pass a single empty bin instead. For any heuristic that
scores each bin from its own remaining capacity, all empty bins score the same, so argmax
(first on ties) picks the first empty bin either way, and the packings are identical, at a
fraction of the cost. Best Fit and First Fit reproduce the published numbers exactly.

Score (as in FunSearch): for instances i with ``bins_used_i`` bins and lower bound
``L_i = ceil(sum(items_i) / capacity)``,
``excess % = 100 * (mean_i bins_used_i - mean_i L_i) / mean_i L_i``.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEST_SETS_PATH = Path(__file__).resolve().parent / "data" / "funsearch_test_sets.json"

Priority = Callable[[float, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Instance:
    name: str
    capacity: int
    items: np.ndarray  # int64 sizes, in arrival order


@dataclass(frozen=True)
class Packing:
    assignment: np.ndarray  # bin index (in opening order) of every item
    bins_used: int
    bestfit_agreement: float  # share of items put in a fitting bin with the least room


# ---------------------------------------------------------------- instances


def weibull_instances(n_instances: int, n_items: int, seed: int) -> list[Instance]:
    """FunSearch's Weibull distribution: round(45 * Weibull(shape 3)), clipped to 1..100, capacity 100."""
    rng = np.random.default_rng(seed)
    return [
        Instance(
            f"weibull_{seed}_{k}",
            100,
            np.clip(np.round(45.0 * rng.weibull(3.0, n_items)), 1, 100).astype(np.int64),
        )
        for k in range(n_instances)
    ]


def or_instances(n_instances: int, n_items: int, seed: int) -> list[Instance]:
    """OR-Library style (binpack1..4): uniform integer sizes 20..100, capacity 150."""
    rng = np.random.default_rng(seed)
    return [
        Instance(f"or_{seed}_{k}", 150, rng.integers(20, 100, n_items, endpoint=True))
        for k in range(n_instances)
    ]


_TEST_SETS: dict[str, list[Instance]] = {}


def test_sets(path: Path = TEST_SETS_PATH) -> dict[str, list[Instance]]:
    """FunSearch's test sets {"OR3": 20 instances, "Weibull 5k": 5 instances}; for reporting only."""
    if not _TEST_SETS:
        raw = json.loads(Path(path).read_text())
        for set_name, instances in raw.items():
            _TEST_SETS[set_name] = [
                Instance(name, int(inst["capacity"]), np.asarray(inst["items"], dtype=np.int64))
                for name, inst in instances.items()
            ]
    return _TEST_SETS


# ---------------------------------------------------------------- the candidate


def load_priority(program_path: str | Path) -> Priority:
    """Import the program under a fresh module name and return its ``priority`` function."""
    path = Path(program_path)
    # Compiled from the text read now, never from a __pycache__ file, which is keyed by mtime
    # and size and could hand back a stale program when a path is rewritten quickly.
    code = compile(path.read_text(), str(path), "exec")
    module = types.ModuleType(f"rsi_binpack_candidate_{next(_counter)}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and typing look their module up here
    try:
        exec(code, module.__dict__)
    finally:
        sys.modules.pop(module.__name__, None)
    priority = getattr(module, "priority", None)
    if priority is None:
        raise ValueError(f"{path} defines no function `priority(item, bins)`")
    if not callable(priority):
        raise TypeError(f"`priority` in {path} is a {type(priority).__name__}, not a function")
    return priority


_counter = itertools.count()


# ---------------------------------------------------------------- the simulation


def pack(priority: Priority, items: np.ndarray, capacity: float) -> Packing:
    """Pack ``items`` online with ``priority`` (see the module docstring for the contract)."""
    sizes = np.asarray(items, dtype=np.float64)
    if sizes.size and (sizes.min() <= 0 or sizes.max() > capacity):
        raise ValueError("item sizes must lie in (0, capacity]")
    n = sizes.size
    # rem[:n_open] are the open bins in opening order; rem[n_open] is always the next empty bin,
    # so rem[:n_open + 1] is exactly what a heuristic may choose from, without concatenation.
    rem = np.empty(n + 1)
    rem[0] = capacity
    assignment = np.empty(n, dtype=np.int64)
    n_open = 0
    tightest = 0
    for i, item in enumerate(sizes.tolist()):
        view = rem[: n_open + 1]
        fits = (view >= item).nonzero()[0]
        bins = view[fits]  # fancy indexing: a copy the heuristic cannot use to edit our state
        least = bins[bins.argmin()]
        try:
            scores = priority(item, bins)
        except Exception as error:
            error.add_note(f"raised by priority() on item {i} (size {item:g}) with {bins.size} bins")
            raise
        b = int(fits[_choice(scores, bins.size, i)])
        if rem[b] == least:
            tightest += 1
        rem[b] -= item
        assignment[i] = b
        if b == n_open:
            n_open += 1
            rem[n_open] = capacity
    return Packing(assignment, n_open, tightest / n if n else 1.0)


def _choice(scores: object, n_bins: int, i: int) -> int:
    """Index of the best score, after checking that ``scores`` is n_bins finite reals."""
    if type(scores) is not np.ndarray:
        scores = np.asarray(scores)
    if scores.shape != (n_bins,):
        raise ValueError(
            f"priority() must return one score per bin, shape ({n_bins},); "
            f"got shape {scores.shape} on item {i}"
        )
    kind = scores.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"priority() must return real numbers; got dtype {scores.dtype} on item {i}")
    k = int(scores.argmax())
    # argmax and argmin both stop at the first NaN, so the two extremes are finite iff all are
    # (two O(1)-overhead calls; a full isfinite().all() costs several times more per item).
    if kind == "f" and not (math.isfinite(scores[k]) and math.isfinite(scores[scores.argmin()])):
        raise ValueError(f"priority() returned NaN or infinite scores on item {i}: {scores[:8]}")
    return k


def bins_used(instance: Instance, assignment: np.ndarray) -> int:
    """Check a packing independently of the simulation and count its bins.

    Every item must be in a bin, bins are numbered 0..m-1 in opening order with none left
    empty, and no bin may hold more than the capacity.
    """
    a = np.asarray(assignment)
    n = instance.items.size
    if a.shape != (n,) or a.dtype.kind not in "iu" or (n and a.min() < 0):
        raise ValueError("packing must give one bin index >= 0 per item")
    if n == 0:
        return 0
    opened = np.maximum.accumulate(a)  # bins are opened in order 0, 1, 2, ..., none skipped
    if a[0] != 0 or (np.diff(opened) > 1).any():
        raise ValueError("packing does not open bins in order")
    loads = np.bincount(a, weights=instance.items)
    if (loads > instance.capacity).any():
        raise ValueError(f"packing overfills bin {int(np.argmax(loads > instance.capacity))}")
    return int(loads.size)


# ---------------------------------------------------------------- the score


def lower_bound(instance: Instance) -> int:
    """L1 bound: ceil(sum of sizes / capacity), computed in exact integers."""
    return -(-int(instance.items.sum()) // instance.capacity)


def excess_pct(used: Sequence[int], bounds: Sequence[int]) -> float:
    """FunSearch's score: 100 * (mean bins used - mean lower bound) / mean lower bound."""
    mean_bound = float(np.mean(bounds))
    return 100.0 * (float(np.mean(used)) - mean_bound) / mean_bound


def run(priority: Priority, instances: Sequence[Instance]) -> dict[str, float]:
    """Pack every instance, verify each packing, and summarise."""
    used, bounds, agreement, new_bin_rate = [], [], [], []
    for instance in instances:
        packing = pack(priority, instance.items, instance.capacity)
        n_bins = bins_used(instance, packing.assignment)
        if n_bins != packing.bins_used:
            raise RuntimeError(f"{instance.name}: simulation counted {packing.bins_used} bins, check {n_bins}")
        used.append(n_bins)
        bounds.append(lower_bound(instance))
        agreement.append(packing.bestfit_agreement)
        new_bin_rate.append(n_bins / instance.items.size)
    return {
        "excess_pct": excess_pct(used, bounds),
        "bins_used": float(np.mean(used)),
        "lower_bound": float(np.mean(bounds)),
        "bestfit_agreement": float(np.mean(agreement)),
        "new_bin_rate": float(np.mean(new_bin_rate)),
    }
