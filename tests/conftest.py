"""Shared fixtures: small real problem folders written into tmp_path."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

TARGET_INITIAL = '''\
"""Fit a curve: f(x) should approach 2.5 * x * x - x + 3."""
import numpy as np

# EVOLVE-BLOCK-START
def f(x):
    y = 1.0 * x + 0.5
    return y
# EVOLVE-BLOCK-END
'''

TARGET_EVALUATE = '''\
import importlib.util
import numpy as np

XS = np.linspace(-2.0, 2.0, 41)


def _load(path):
    spec = importlib.util.spec_from_file_location("candidate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(program_path):
    f = _load(program_path).f
    ys = np.asarray([f(float(x)) for x in XS], dtype=float)
    error = float(np.mean((ys - (2.5 * XS * XS - XS + 3.0)) ** 2))
    if not np.isfinite(error):
        raise ValueError("f returned non-finite values")
    return {"combined_score": -error, "behavior": float(np.clip(ys.mean() / 10.0, 0, 1))}


def evaluate_holdout(program_path):
    f = _load(program_path).f
    xs = np.linspace(2.0, 3.0, 11)
    error = float(np.mean((np.asarray([f(float(x)) for x in xs]) - (2.5 * xs * xs - xs + 3.0)) ** 2))
    return {"combined_score": -error, "extrapolation_mse": error}
'''


@pytest.fixture(autouse=True, scope="session")
def _signing_keys(tmp_path_factory):
    """Runs sign their audit head when they end (rsi.oversight.signing): with a key of the test
    session's own, not one made in the home folder."""
    import os

    old = os.environ.get("RSI_KEY_DIR")
    os.environ["RSI_KEY_DIR"] = str(tmp_path_factory.mktemp("keys"))
    yield
    if old is None:
        os.environ.pop("RSI_KEY_DIR", None)
    else:
        os.environ["RSI_KEY_DIR"] = old


def write_problem(folder: Path, initial: str = TARGET_INITIAL, evaluate: str = TARGET_EVALUATE,
                  toml: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if initial is not None:
        (folder / "initial.py").write_text(textwrap.dedent(initial))
    if evaluate is not None:
        (folder / "evaluate.py").write_text(textwrap.dedent(evaluate))
    if toml is not None:
        (folder / "problem.toml").write_text(textwrap.dedent(toml))
    return folder


@pytest.fixture
def target_problem(tmp_path: Path) -> Path:
    return write_problem(tmp_path / "target", toml="""\
        [run]
        budget = 40
        workers = 1
        [evaluator]
        timeout = 10
        [archive]
        islands = 2
        migration_interval = 10
        """)


class TimedExecutor:
    """An executor as ``drive`` sees it, recording when each task was submitted and its result
    collected (an evaluation's interval, as the search experiences it)."""

    def __init__(self, inner):
        self.inner = inner
        self.started: dict[int, float] = {}
        self.intervals: list[tuple[float, float]] = []
        self.evaluated: list[tuple[int, float, float]] = []  # (candidate id, submitted, collected)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @property
    def in_flight(self) -> int:
        return self.inner.in_flight

    def submit(self, task) -> None:
        self.started[task.ticket] = time.time()
        self.inner.submit(task)

    def collect(self, timeout: float):
        results = self.inner.collect(timeout)
        now = time.time()
        for r in results:
            start = self.started.pop(r.ticket)
            self.intervals.append((start, now))
            self.evaluated.append((r.candidate_id, start, now))
        return results


def covered(intervals: list[tuple[float, float]], by: list[tuple[float, float]]) -> float:
    """Seconds of ``intervals`` during which at least one interval of ``by`` was running."""
    merged: list[list[float]] = []
    for start, end in sorted(by):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in intervals for s2, e2 in merged)
