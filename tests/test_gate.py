import math

import numpy as np
import pytest

from rsi.oversight.gate import (
    Comparison,
    binomial_sf,
    compare_paired,
    compare_repeats,
    regularized_incomplete_beta,
    t_cdf,
    t_sf,
)

# ----------------------------------------------------------------------------- distributions


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 7.0, -1.2])
def test_t_with_one_degree_is_cauchy(t):
    assert t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0, 3.0, 20.0, -2.0])
def test_t_with_two_degrees_has_a_closed_form(t):
    assert t_sf(t, 2) == pytest.approx(0.5 - t / (2 * math.sqrt(t * t + 2)), rel=1e-13, abs=1e-15)


@pytest.mark.parametrize(
    "t, df, expected",
    [  # cross-checked with scipy.stats.t.sf
        (2.5, 3, 0.04385332350403278),
        (-1.3, 4.7, 0.8731513520676949),
        (3.0, 10, 0.006671827511284785),
        (10.0, 2.2, 0.003552231855129221),
        (50.0, 30, 9.357708829611355e-31),
        (6.0, 1000, 1.3776845866887376e-09),
        (0.5, 0.5, 0.37865903646471827),
    ],
)
def test_t_survival_known_values(t, df, expected):
    assert t_sf(t, df) == pytest.approx(expected, rel=1e-12)


def test_t_tends_to_the_normal_and_cdf_complements():
    assert t_sf(1.96, 1e9) == pytest.approx(0.5 * math.erfc(1.96 / math.sqrt(2)), rel=1e-9)
    assert t_sf(1.96, 1e6) == pytest.approx(0.024998033792634926, rel=1e-8)
    for t in (-3.0, -0.1, 0.0, 0.7, 4.0):
        assert t_cdf(t, 7.5) + t_sf(t, 7.5) == pytest.approx(1.0, abs=1e-15)
    assert t_sf(math.inf, 3) == 0.0 and t_sf(-math.inf, 3) == 1.0


def test_incomplete_beta_known_values():
    assert regularized_incomplete_beta(1, 1, 0.37) == pytest.approx(0.37, rel=1e-14)  # uniform
    assert regularized_incomplete_beta(2, 3, 0.4) == pytest.approx(0.5248, rel=1e-13)
    assert regularized_incomplete_beta(5, 5, 0.5) == pytest.approx(0.5, rel=1e-13)
    assert regularized_incomplete_beta(0.5, 0.5, 0.3) == pytest.approx(
        2 / math.pi * math.asin(math.sqrt(0.3)), rel=1e-13
    )
    assert regularized_incomplete_beta(1e4, 0.5, 0.9999) == pytest.approx(0.1572940177633515, rel=1e-9)
    assert regularized_incomplete_beta(3, 4, 0.0) == 0.0 and regularized_incomplete_beta(3, 4, 1.0) == 1.0


def test_binomial_tail_is_exact():
    assert binomial_sf(18, 24) == sum(math.comb(24, k) for k in range(18, 25)) / 2**24
    assert binomial_sf(18, 24) == pytest.approx(0.011327922344207764, rel=1e-15)
    assert binomial_sf(0, 10) == 1.0 and binomial_sf(11, 10) == 0.0
    assert binomial_sf(20, 20) == 0.5**20


# ----------------------------------------------------------------------------- repeats


def test_identical_distributions_are_not_better():
    rng = np.random.default_rng(0)
    false_passes = 0
    for _ in range(1000):
        a = rng.normal(-3.98, 0.05, 5)
        b = rng.normal(-3.98, 0.05, 5)
        false_passes += compare_repeats(a, b).better
    assert false_passes <= 70  # one-sided level 0.05: about 50 expected
    same = compare_repeats([1.0, 1.2, 0.9], [1.0, 1.2, 0.9])
    assert not same.better and same.p_value == pytest.approx(0.5)


def test_a_clear_shift_is_better():
    rng = np.random.default_rng(1)
    a = rng.normal(-3.98, 0.02, 5)
    b = rng.normal(-3.90, 0.02, 5)
    result = compare_repeats(a, b)
    assert isinstance(result, Comparison)
    assert result.better and result.test == "welch-t"
    assert result.p_value < 1e-3
    assert result.effect == pytest.approx(b.mean() - a.mean())
    assert result.n_incumbent == 5 and result.n_challenger == 5
    assert "Welch" in result.summary and result.summary.endswith("better")


def test_welch_matches_a_hand_computation():
    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 4.5, 6.0]
    va, vb = np.var(a, ddof=1), np.var(b, ddof=1)
    se = math.sqrt(va / 4 + vb / 3)
    t = (np.mean(b) - np.mean(a)) / se
    df = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    result = compare_repeats(a, b)
    assert result.p_value == pytest.approx(t_sf(t, df), rel=1e-12)
    # scipy.stats.ttest_ind(b, a, equal_var=False, alternative="greater").pvalue
    assert result.p_value == pytest.approx(0.06874206330818389, rel=1e-9)
    pooled = math.sqrt((3 * va + 2 * vb) / 5)
    assert result.noise == pytest.approx(pooled)
    assert not result.better and "p ≥ 0.05" in result.summary  # Δ = 2.0 > noise, but p = 0.069
    assert compare_repeats(a, b, level=0.1).better


def test_significant_but_within_noise_is_not_better():
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, 400)
    b = rng.normal(0.5, 1.0, 400)
    result = compare_repeats(a, b)
    assert result.p_value < 1e-6
    assert not result.better and "within the noise" in result.summary


def test_min_effect_shifts_the_null():
    a, b = [1.0, 1.1, 0.9, 1.0], [2.0, 2.1, 1.9, 2.0]
    assert compare_repeats(a, b).better
    assert not compare_repeats(a, b, min_effect=1.0).better
    assert compare_repeats(a, b, min_effect=0.5).better


def test_deterministic_programs_are_compared_exactly():
    result = compare_repeats([2.634, 2.634, 2.634], [2.6358, 2.6358])
    assert result.better and result.test == "exact" and result.noise == 0.0
    assert not compare_repeats([2.634] * 3, [2.634] * 3).better
    assert not compare_repeats([2.634] * 3, [2.633] * 3).better
    assert not compare_repeats([1.0] * 3, [1.5] * 3, min_effect=0.5).better
    assert compare_repeats([1.0] * 3, [1.5] * 3, min_effect=0.4).better
    single = compare_repeats([1.0], [2.0])
    assert single.better and single.test == "exact" and "single evaluation" in single.summary


def test_one_noisy_side_with_a_single_run_uses_pooled_variance():
    result = compare_repeats([1.0, 1.1, 0.9], [1.5])
    assert result.test == "pooled-t"
    # pooled sd 0.1 from the incumbent: t = 0.5 / (0.1 * sqrt(1/3 + 1)) with 2 df
    assert result.p_value == pytest.approx(t_sf(0.5 / (0.1 * math.sqrt(4 / 3)), 2), rel=1e-12)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        compare_repeats([], [1.0])
    with pytest.raises(ValueError, match="NaN or infinity"):
        compare_repeats([1.0, math.nan], [1.0])
    with pytest.raises(ValueError, match="level"):
        compare_repeats([1.0], [2.0], level=1.5)
    with pytest.raises(ValueError, match="one score per unit"):
        compare_paired([1.0, 2.0], [1.0])


# ----------------------------------------------------------------------------- paired


def test_paired_all_positive_is_better():
    rng = np.random.default_rng(3)
    base = rng.normal(-4.0, 1.0, 20)  # problems differ a lot; the pairing removes that
    child = base + rng.uniform(0.01, 0.1, 20)
    result = compare_paired(base, child)
    assert result.better and result.test == "sign+bootstrap"
    assert result.p_value == pytest.approx(0.5**20)
    assert result.n_incumbent == result.n_challenger == 20
    assert result.summary.startswith("paired n=20: mean Δ=+")
    assert "95% bootstrap CI" in result.summary and "sign test 20/20" in result.summary


def test_paired_mixed_is_not_better():
    rng = np.random.default_rng(4)
    base = rng.normal(-4.0, 1.0, 24)
    child = base + rng.normal(0.0, 0.05, 24)
    result = compare_paired(base, child)
    assert not result.better
    assert "not better" in result.summary


def test_paired_needs_both_tests():
    # 18 of 24 units a little better, 6 much worse: the sign test passes, the mean does not
    base = np.zeros(24)
    child = np.array([0.01] * 18 + [-0.5] * 6)
    result = compare_paired(base, child)
    assert result.p_value == pytest.approx(binomial_sf(18, 24))
    assert result.p_value < 0.05 and not result.better
    assert "CI reaches 0" in result.summary
    # one huge gain, the rest slightly worse: the mean is up, the sign test fails
    child = np.array([10.0] + [-0.01] * 23)
    result = compare_paired(base, child)
    assert result.effect > 0 and not result.better and "sign test p" in result.summary


def test_paired_ties_are_dropped_and_shown():
    base = np.zeros(12)
    child = np.array([0.1] * 8 + [0.0] * 4)
    result = compare_paired(base, child)
    assert result.p_value == pytest.approx(0.5**8)
    assert "8/8 (4 ties)" in result.summary and result.better


def test_paired_too_few_units_cannot_pass():
    assert not compare_paired([0.0] * 4, [1.0] * 4).better  # 1/16 > 0.05
    assert compare_paired([0.0] * 5, [1.0] * 5).better  # 1/32 < 0.05


def test_paired_is_reproducible_by_seed():
    rng = np.random.default_rng(5)
    base = rng.normal(size=30)
    child = base + rng.normal(0.05, 0.1, 30)
    assert compare_paired(base, child, seed=7).summary == compare_paired(base, child, seed=7).summary


def test_paired_bootstrap_interval_is_sane():
    rng = np.random.default_rng(6)
    diffs = rng.normal(0.1, 0.2, 200)
    result = compare_paired(np.zeros(200), diffs, n_boot=4000)
    half_width = 1.96 * diffs.std(ddof=1) / math.sqrt(200)
    text = result.summary.split("CI ")[1].split(")")[0]
    low, high = (float(x) for x in text.split(".."))
    assert low == pytest.approx(diffs.mean() - half_width, abs=0.01)
    assert high == pytest.approx(diffs.mean() + half_width, abs=0.01)
