"""Noise-aware comparisons for the adoption gate: is the challenger really better?

Scores are "higher is better". Two designs:

- ``compare_repeats``: each program evaluated several times (unpaired). One-sided Welch t-test
  that the challenger's mean exceeds the incumbent's by more than ``min_effect``, *and* the
  difference must exceed the noise of re-evaluating one program (the pooled standard deviation
  of the repeats). Deterministic programs (every repeat equal) are compared exactly.
- ``compare_paired``: both programs evaluated on the same units (problem, seed). One-sided
  exact sign test on the differences, *and* a percentile bootstrap confidence interval of the
  mean difference whose lower bound must be above ``min_effect``.

The t distribution is computed here (regularized incomplete beta by continued fraction), so
the gate needs nothing beyond the standard library and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Comparison:
    """The gate's verdict and the numbers behind it (``summary`` says it in one line)."""

    better: bool
    test: str  # "welch-t", "pooled-t", "exact" or "sign+bootstrap"
    level: float
    p_value: float
    effect: float  # challenger minus incumbent (mean, or mean of paired differences)
    noise: float  # pooled std of repeats, or std of paired differences
    n_incumbent: int
    n_challenger: int
    summary: str


# ----------------------------------------------------------------------------- distributions


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function, by the modified Lentz method."""
    tiny, eps = 1e-300, 1e-15
    c = 1.0
    d = 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 100_000):
        # even step: m (b - m) x / ((a + 2m - 1)(a + 2m))
        numerator = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        result *= d * c
        # odd step: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
        numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        result *= step
        if abs(step - 1.0) < eps:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError("incomplete beta needs a > 0 and b > 0")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # the fraction converges fast for x below the mean a / (a + b); use the symmetry above it
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _incomplete_beta_fraction(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if math.isnan(t) or not df > 0:
        raise ValueError(f"t survival function needs a number and df > 0 (got t={t}, df={df})")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    if df > 1e7:  # the normal limit, to well below any level the gate uses
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    return 1.0 - t_sf(t, df) if t >= 0 else t_sf(-t, df)


def binomial_sf(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exactly."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return sum(math.comb(n, j) for j in range(k, n + 1)) / 2**n


# ----------------------------------------------------------------------------- helpers


def _values(name: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"the gate needs at least one {name} score")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"the {name} scores include NaN or infinity; treat failed evaluations before the gate"
        )
    return array


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (got {level})")


def _num(x: float) -> str:
    return f"{x:.6g}"


def _delta(x: float) -> str:
    return f"{x:+.3g}"


def _p(p: float) -> str:
    return f"{p:.2g}"


# ----------------------------------------------------------------------------- unpaired repeats


def compare_repeats(
    incumbent: Sequence[float],
    challenger: Sequence[float],
    level: float = 0.05,
    min_effect: float = 0.0,
) -> Comparison:
    """Is the challenger better, given repeated evaluations of each program?

    Better iff (a) a one-sided Welch t-test rejects "challenger mean <= incumbent mean +
    min_effect" at ``level``, and (b) the mean difference exceeds the noise, the pooled standard
    deviation of the repeats: a gain smaller than what re-running one program moves is not
    taken as progress. If one side was evaluated once, its variance is unknown: the pooled
    variance is used for both (a Student t-test, "pooled-t"). If every repeat on each side is
    equal, the programs are deterministic and the test is "exact": better iff challenger >
    incumbent + min_effect.
    """
    _check_level(level)
    a, b = _values("incumbent", incumbent), _values("challenger", challenger)
    n_a, n_b = a.size, b.size
    mean_a, mean_b = float(a.mean()), float(b.mean())
    var_a = float(a.var(ddof=1)) if n_a > 1 else 0.0
    var_b = float(b.var(ddof=1)) if n_b > 1 else 0.0
    effect = mean_b - mean_a
    dof_pooled = n_a + n_b - 2
    noise = math.sqrt(((n_a - 1) * var_a + (n_b - 1) * var_b) / dof_pooled) if dof_pooled > 0 else 0.0
    head = f"challenger {_num(mean_b)} vs incumbent {_num(mean_a)} (n={n_b} vs {n_a}): Δ={_delta(effect)}"

    if a.min() == a.max() and b.min() == b.max():
        better = effect > min_effect
        once = " (a single evaluation cannot show noise: compared exactly)" if min(n_a, n_b) == 1 else ""
        bar = f"incumbent {'+ ' + _num(min_effect) if min_effect else ''}".rstrip()
        verdict = "better" if better else "not better"
        summary = f"{head}, deterministic{once}: {verdict} ({'>' if better else '<='} {bar})"
        return Comparison(better, "exact", level, 0.0 if better else 1.0, effect, 0.0, n_a, n_b, summary)

    if n_a == 1 or n_b == 1:
        test = "pooled-t"
        se = noise * math.sqrt(1.0 / n_a + 1.0 / n_b)
        df = float(dof_pooled)
    else:
        test = "welch-t"
        share_a, share_b = var_a / n_a, var_b / n_b
        se = math.sqrt(share_a + share_b)
        df = (share_a + share_b) ** 2 / (share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1))
    t = (effect - min_effect) / se
    p_value = t_sf(t, df)
    significant = p_value < level
    beyond_noise = effect > noise
    better = significant and beyond_noise
    shift = f" - {_num(min_effect)}" if min_effect else ""
    label = "Welch" if test == "welch-t" else "pooled"
    stats = f"{label} t{shift}={t:.3g} df={df:.3g} p={_p(p_value)}, noise ±{noise:.3g}, level {level:g}"
    if better:
        why = "better"
    elif not significant:
        why = f"not better: p ≥ {level:g}"
    else:
        why = f"not better: Δ within the noise ±{noise:.3g}"
    return Comparison(better, test, level, p_value, effect, noise, n_a, n_b, f"{head}; {stats}: {why}")


# ----------------------------------------------------------------------------- paired units


def _bootstrap_means(diffs: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = diffs.size
    chunk = max(1, 2_000_000 // n)  # bound the index matrix to about 16 MB
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        means[start : start + size] = diffs[rng.integers(0, n, size=(size, n))].mean(axis=1)
    return means


def compare_paired(
    incumbent: Sequence[float],
    challenger: Sequence[float],
    level: float = 0.05,
    n_boot: int = 10000,
    seed: int = 0,
    min_effect: float = 0.0,
) -> Comparison:
    """Is the challenger better, given both evaluated on the same units (problem, seed)?

    ``incumbent[i]`` and ``challenger[i]`` are scores on the same unit. Better iff (a) the
    one-sided exact sign test rejects "no more units improve than worsen" at ``level`` (ties
    dropped), and (b) the two-sided ``1 - level`` percentile bootstrap interval of the mean
    difference lies above ``min_effect``. (b) is a one-sided test at ``level / 2``: the
    conservative side, on purpose. The sign test cannot pass with fewer than
    ``ceil(log2(1 / level))`` units that differ (5 at level 0.05).
    """
    _check_level(level)
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    a, b = _values("incumbent", incumbent), _values("challenger", challenger)
    if a.size != b.size:
        raise ValueError(
            f"paired comparison needs one score per unit on each side (got {a.size} and {b.size})"
        )
    diffs = b - a
    n = diffs.size
    effect = float(diffs.mean())
    noise = float(diffs.std(ddof=1)) if n > 1 else 0.0
    wins, losses = int(np.sum(diffs > 0)), int(np.sum(diffs < 0))
    decided = wins + losses
    p_value = binomial_sf(wins, decided) if decided else 1.0
    if diffs.min() == diffs.max():
        low = high = float(diffs[0])
    else:
        means = _bootstrap_means(diffs, n_boot, seed)
        low, high = (float(q) for q in np.quantile(means, [level / 2, 1 - level / 2]))
    sign_ok = p_value < level
    ci_ok = low > min_effect
    better = sign_ok and ci_ok

    ties = f" ({n - decided} ties)" if decided < n else ""
    summary = (
        f"paired n={n}: mean Δ={_delta(effect)} ({100 * (1 - level):.4g}% bootstrap CI "
        f"{_delta(low)}..{_delta(high)}), sign test {wins}/{decided}{ties} p={_p(p_value)} "
        f"at level {level:g}"
    )
    if better:
        summary += ": better"
    else:
        reasons = []
        if not sign_ok:
            reasons.append(f"sign test p ≥ {level:g}")
        if not ci_ok:
            reasons.append(f"CI reaches {_delta(min_effect) if min_effect else '0'}")
        summary += ": not better (" + "; ".join(reasons) + ")"
    return Comparison(better, "sign+bootstrap", level, p_value, effect, noise, n, n, summary)
