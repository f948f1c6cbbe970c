"""[archive] min_improvement through a real search: noise alone never displaces an elite."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import rsi
from rsi.errors import ProblemError


def noisy(path: str) -> dict[str, float]:
    """Every program is as good as the next; its score is noise in [0, 0.01) (from its text)."""
    noise = int(hashlib.sha256(Path(path).read_bytes()).hexdigest(), 16) % 1000 / 100_000
    return {"combined_score": 1.0 + noise, "flat": 0.0}


def search_with(margin: float, out: Path) -> rsi.Search:
    problem = rsi.problem_from("def f(x):\n    y = 2.0 * x + 1.0\n    return y\n", noisy, settings={
        "run": {"budget": 25, "workers": 1, "executor": "fork"},
        "archive": {"features": ["flat"], "bins": 1, "islands": 1, "min_improvement": margin}})
    summary = rsi.improve(problem, out)
    assert summary.evaluations == 25
    return rsi.Search.resume(out, problem=problem)


def test_noise_within_the_margin_never_displaces_the_seed(tmp_path):
    search = search_with(0.02, tmp_path / "guarded")
    try:
        assert [e.id for e in search.archive.elites()] == [1]  # one cell: the seed kept it
        assert search.archive.min_improvement == 0.02
    finally:
        search.close()
    search = search_with(0.0, tmp_path / "unguarded")
    try:
        assert [e.id for e in search.archive.elites()] != [1]  # a lucky child took the cell
    finally:
        search.close()


def test_a_negative_margin_is_refused_with_its_name():
    with pytest.raises(ProblemError, match="min_improvement"):
        rsi.problem_from("def f(x):\n    return x\n", noisy, settings={"archive": {"min_improvement": -1}})
