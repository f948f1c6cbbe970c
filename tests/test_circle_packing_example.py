"""The circle packing example: the trusted check is strict, and rsi runs the folder end to end."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsi.storage import Store

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "circle_packing"
spec = importlib.util.spec_from_file_location("test_circles_evaluate", FOLDER / "evaluate.py")
ev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ev)
N = ev.N


def grid() -> np.ndarray:
    """26 valid circles: a 6 x 5 grid of circles of radius 1/12 (less a hair), less four."""
    r = 1 / 12
    rows = [(r * (2 * i + 1), 0.1 * (2 * j + 1), r * (1 - 1e-12)) for j in range(5) for i in range(6)]
    return np.array(rows[:N])


def test_a_valid_packing_scores_its_sum_of_radii():
    p = grid()
    m = ev.score(p.ravel().tolist())
    assert m["combined_score"] == pytest.approx(p[:, 2].sum()) and m["radius_spread"] == pytest.approx(0.0)
    assert ev.score(p) == m  # an array crosses the boundary as well


def test_touching_is_allowed_exactly():
    p = grid()
    p[0] = (0.25, 0.25, 0.25)  # touches the left and bottom sides
    p[1] = (0.75, 0.25, 0.25)  # touches circle 0 exactly: distance 0.5 == 0.25 + 0.25
    p[2:, 2] = 1e-3
    p[2:, 0] = np.linspace(0.01, 0.99, N - 2)
    p[2:, 1] = 0.9
    assert ev.score(p)["sum_radii"] == pytest.approx(0.5 + (N - 2) * 1e-3)


def _changed(i: int, value) -> list:
    p = grid().ravel().tolist()
    p[i] = value
    return p


def _overlap() -> np.ndarray:
    p = grid()
    p[1, 0] = p[0, 0] + 2 * p[0, 2] - 1e-15  # a hair closer than touching
    return p


def _outside() -> np.ndarray:
    p = grid()
    p[0, 0] = p[0, 2] - 1e-15  # crosses the left side by a hair
    return p


@pytest.mark.parametrize(("data", "message"), [
    (_overlap(), "circles 0 and 1 overlap"),
    (_outside(), "circle 0 leaves the unit square"),
    (_changed(0, float("nan")), "NaN or infinite"),
    (_changed(4, float("inf")), "NaN or infinite"),
    (_changed(2, -0.01), "radius"),
    (_changed(2, 0.0), "radius"),
    (grid()[:-1].ravel().tolist(), "expected 78 numbers"),
    (grid().ravel().tolist() + [0.1], "expected 78 numbers"),
    ({"x": 1}, "expected 78 numbers"),
    ("2.64", "expected 78 numbers"),
    (_changed(0, "0.5"), "expected 78 numbers"),
    (_changed(0, True), "expected 78 numbers"),
    (np.array(["a"] * 78), "dtype"),
    (np.zeros((N, 2)), "expected 78 numbers"),
])
def test_score_rejects_invalid_packings(data, message):
    with pytest.raises(ValueError, match=message):
        ev.score(data)


def test_a_candidate_without_pack_fails_clearly(tmp_path):
    path = tmp_path / "candidate.py"
    path.write_text("def construct():\n    return []\n")
    with pytest.raises(ValueError, match="defines no function `pack"):
        ev.produce(str(path))


@pytest.mark.slow
def test_the_seed_is_valid_and_near_the_records():
    m = ev.evaluate(str(FOLDER / "initial.py"))
    assert 2.6 < m["sum_radii"] < 2.6359 and math.isfinite(m["radius_spread"])


@pytest.mark.slow
def test_rsi_runs_the_folder_end_to_end(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "rsi.cli", "run", str(FOLDER), "--budget", "3", "--workers", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "stopped: budget reached after 3 evaluations" in done.stdout
    store = Store.open(out)
    try:
        seed = store.get(1)
        assert seed.status == "ok" and 2.6 < seed.score < 2.6359
        assert store.best().score >= seed.score
    finally:
        store.close()
