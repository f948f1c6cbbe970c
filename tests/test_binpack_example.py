"""The bin packing examples: exact published baselines, the evaluator contract, clear failures."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


weibull_eval = _load(EXAMPLES / "binpack" / "evaluate.py", "test_binpack_evaluate")
or_eval = _load(EXAMPLES / "binpack_or" / "evaluate.py", "test_binpack_or_evaluate")
bp = weibull_eval.bp
INITIAL = {"binpack": EXAMPLES / "binpack" / "initial.py", "binpack_or": EXAMPLES / "binpack_or" / "initial.py"}
EVALUATORS = {"binpack": weibull_eval, "binpack_or": or_eval}


def best_fit(item, bins):
    return -(bins - item)


def first_fit(item, bins):
    return -np.arange(len(bins))


def _program(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "candidate.py"
    path.write_text("import numpy as np\n\n" + body)
    return path


# ---------------------------------------------------------------- published numbers

# FunSearch (Nature 2023), Table 1: % excess bins over ceil(sum/capacity).
PUBLISHED = [(best_fit, "Weibull 5k", 3.98), (best_fit, "OR3", 5.37),
             (first_fit, "Weibull 5k", 4.23), (first_fit, "OR3", 5.74)]


@pytest.mark.parametrize(("heuristic", "test_set", "expected"), PUBLISHED)
def test_harness_reproduces_published_baselines(heuristic, test_set, expected):
    assert round(bp.run(heuristic, bp.test_sets()[test_set])["excess_pct"], 2) == expected


def test_test_sets_are_the_published_ones():
    sets = bp.test_sets()
    assert [len(sets["OR3"]), len(sets["Weibull 5k"])] == [20, 5]
    assert {i.capacity for i in sets["OR3"]} == {150} and {i.items.size for i in sets["OR3"]} == {500}
    assert {i.capacity for i in sets["Weibull 5k"]} == {100}
    assert {i.items.size for i in sets["Weibull 5k"]} == {5000}


@pytest.mark.parametrize("example", ["binpack", "binpack_or"])
def test_holdout_of_the_seed_is_best_fit(example):
    result = EVALUATORS[example].evaluate_holdout(str(INITIAL[example]))
    assert round(result["weibull5k_excess_pct"], 2) == 3.98
    assert round(result["or3_excess_pct"], 2) == 5.37
    reported = "weibull5k_excess_pct" if example == "binpack" else "or3_excess_pct"
    assert result["combined_score"] == -result[reported]


def test_holdout_of_first_fit_program(tmp_path):
    path = _program(tmp_path, "def priority(item, bins):\n    return -np.arange(len(bins))\n")
    for evaluator in EVALUATORS.values():
        result = evaluator.evaluate_holdout(str(path))
        assert round(result["weibull5k_excess_pct"], 2) == 4.23
        assert round(result["or3_excess_pct"], 2) == 5.74


# ---------------------------------------------------------------- the simulation


def _pack_every_bin(priority, items, capacity):
    """FunSearch's own contract: one bin per item preallocated, every bin that fits offered."""
    rem = np.full(len(items), float(capacity))
    for item in items:
        fits = np.flatnonzero(rem >= item)
        rem[fits[np.argmax(priority(float(item), rem[fits]))]] -= item
    return int((rem != capacity).sum())


@pytest.mark.parametrize("heuristic", [
    best_fit,
    first_fit,
    lambda item, bins: np.where(bins - item <= 4, 1000.0 - bins, -np.abs(bins - item - 30)),
    lambda item, bins: np.sin(bins * 7.1 + item),
])
def test_one_empty_bin_packs_like_every_empty_bin(heuristic):
    """Offering one empty bin instead of all of them changes nothing for per-bin scores."""
    for instance in bp.weibull_instances(2, 300, seed=5) + bp.or_instances(2, 300, seed=5):
        packing = bp.pack(heuristic, instance.items, instance.capacity)
        assert packing.bins_used == _pack_every_bin(heuristic, instance.items, instance.capacity)


def test_heuristic_sees_fitting_bins_in_opening_order_then_one_empty_bin():
    seen = []

    def spy(item, bins):
        seen.append((item, bins.tolist()))
        return -(bins - item)

    bp.pack(spy, np.array([60, 50, 30, 45, 5]), 100)
    assert seen == [
        (60.0, [100.0]),
        (50.0, [100.0]),  # 40 left in bin 0: too small
        (30.0, [40.0, 50.0, 100.0]),
        (45.0, [50.0, 100.0]),  # bin 0 holds 90 now
        (5.0, [10.0, 5.0, 100.0]),  # opening order, not sorted
    ]


def test_heuristic_cannot_change_the_simulation_through_its_argument():
    def vandal(item, bins):
        scores = -(bins - item)
        bins[:] = 1e9
        return scores

    instance = bp.weibull_instances(1, 500, seed=3)[0]
    assert bp.pack(vandal, instance.items, 100).bins_used == bp.pack(best_fit, instance.items, 100).bins_used


def test_packing_is_checked_independently():
    instance = bp.Instance("tiny", 10, np.array([6, 5, 4]))
    assert bp.bins_used(instance, np.array([0, 1, 0])) == 2
    with pytest.raises(ValueError, match="overfills"):
        bp.bins_used(instance, np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="order"):
        bp.bins_used(instance, np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="one bin index"):
        bp.bins_used(instance, np.array([0, 1]))


def test_excess_is_funsearch_formula():
    instances = [bp.Instance("a", 10, np.array([6, 5])), bp.Instance("b", 10, np.array([9, 9, 3]))]
    assert [bp.lower_bound(i) for i in instances] == [2, 3]
    assert bp.excess_pct([2, 4], [2, 3]) == pytest.approx(100 * (3 - 2.5) / 2.5)


# ---------------------------------------------------------------- training instances


def test_generated_instances_follow_the_distributions():
    for instance in bp.weibull_instances(3, 5000, seed=1):
        assert instance.capacity == 100
        assert 1 <= instance.items.min() and instance.items.max() <= 100
        assert 35 < instance.items.mean() < 45  # 45 * Gamma(4/3) = 40.2
    sizes = np.concatenate([i.items for i in bp.or_instances(10, 500, seed=1)])
    assert sizes.min() == 20 and sizes.max() == 100
    assert all(i.capacity == 150 for i in bp.or_instances(2, 5, seed=1))


@pytest.mark.parametrize("example", ["binpack", "binpack_or"])
def test_training_instances_are_not_the_test_sets(example):
    train = EVALUATORS[example].TRAIN
    test = [i.items for s in bp.test_sets().values() for i in s]
    for instance in train:
        for items in test:
            n = min(items.size, instance.items.size)
            assert not np.array_equal(instance.items[:n], items[:n])


# ---------------------------------------------------------------- evaluate()


@pytest.mark.parametrize("example", ["binpack", "binpack_or"])
def test_evaluate_seed_program(example):
    evaluator = EVALUATORS[example]
    first = evaluator.evaluate(str(INITIAL[example]))
    assert set(first) == {"combined_score", "excess_pct", "bins_used", "behavior", "new_bin_rate"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in first.values())
    assert first["combined_score"] < 0
    assert first["combined_score"] == -first["excess_pct"]
    assert first["behavior"] == 1.0  # Best Fit always takes the tightest bin
    assert 0 < first["new_bin_rate"] < 1
    assert evaluator.evaluate(str(INITIAL[example])) == first


def test_evaluate_ranks_a_better_heuristic_higher(tmp_path):
    # Tight fit (gap <= 4) first, else the tightest bin that still leaves >= 25, else open a bin.
    better = _program(tmp_path, (
        "def priority(item, bins):\n"
        "    gap = bins - item\n"
        "    scores = np.where(gap <= 4, 1000.0 - gap, np.where(gap >= 25, 500.0 - gap, -gap))\n"
        "    scores[-1] = 0.0\n"
        "    return scores\n"
    ))
    seed = weibull_eval.evaluate(str(INITIAL["binpack"]))
    result = weibull_eval.evaluate(str(better))
    assert result["combined_score"] > seed["combined_score"] + 1.0
    assert 0.0 <= result["behavior"] < 1.0


BROKEN = {
    "raises": ("def priority(item, bins):\n    raise RuntimeError('boom')\n", RuntimeError, "boom"),
    "scalar": ("def priority(item, bins):\n    return 1.0\n", ValueError, "shape"),
    "short": ("def priority(item, bins):\n    return bins[:-1]\n", ValueError, "shape"),
    "2-d": ("def priority(item, bins):\n    return bins[:, None]\n", ValueError, "shape"),
    "nan": ("def priority(item, bins):\n    return np.where(bins > 50, np.nan, bins)\n", ValueError, "NaN"),
    "inf": ("def priority(item, bins):\n    return -np.inf * bins\n", ValueError, "infinite"),
    "complex": ("def priority(item, bins):\n    return bins + 1j\n", TypeError, "real"),
    "missing": ("def heuristic(item, bins):\n    return bins\n", ValueError, "priority"),
    "not callable": ("priority = 3\n", TypeError, "priority"),
    "syntax": ("def priority(item, bins)\n    return bins\n", SyntaxError, None),
}


@pytest.mark.parametrize("case", list(BROKEN))
@pytest.mark.parametrize("example", ["binpack", "binpack_or"])
def test_broken_program_is_a_clear_error(tmp_path, example, case):
    body, error, message = BROKEN[case]
    with pytest.raises(error, match=message):
        EVALUATORS[example].evaluate(str(_program(tmp_path, body)))


def test_error_names_the_item_it_failed_on(tmp_path):
    path = _program(tmp_path, "def priority(item, bins):\n    return 1 / (len(bins) - 2) * bins\n")
    with pytest.raises(ZeroDivisionError) as caught:
        weibull_eval.evaluate(str(path))
    assert any("raised by priority() on item" in note for note in caught.value.__notes__)


def test_each_call_loads_the_program_afresh(tmp_path):
    path = _program(tmp_path, "def priority(item, bins):\n    return -(bins - item)\n")
    best = weibull_eval.evaluate(str(path))["excess_pct"]
    path.write_text("import numpy as np\n\ndef priority(item, bins):\n    return -np.arange(len(bins))\n")
    assert weibull_eval.evaluate(str(path))["excess_pct"] > best
