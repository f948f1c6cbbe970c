"""Single-machine scheduling, total weighted tardiness: 5 instances of 40 jobs.

Processing times uniform on 1..20, weights on 1..10, due dates uniform on
[(1 - T - R/2) P, (1 - T + R/2) P] with P the total processing time, tardiness factor T = 0.4 and
range R = 0.6 (the classic generator of Potts and Van Wassenhove). Whenever the machine is free,
the waiting job with the highest ``priority(processing, weight, due, now)`` runs next (arrays over
the waiting jobs, ``now`` the current time). Score: minus the mean total weighted tardiness.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

JOBS = 40
INSTANCES = 5
TARDINESS, RANGE = 0.4, 0.6


def _make_instances() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3601)
    instances = []
    for _ in range(INSTANCES):
        processing = rng.integers(1, 21, JOBS).astype(float)
        weight = rng.integers(1, 11, JOBS).astype(float)
        total = processing.sum()
        low = max(0.0, (1 - TARDINESS - RANGE / 2) * total)
        due = np.round(rng.uniform(low, (1 - TARDINESS + RANGE / 2) * total, JOBS))
        instances.append((processing, weight, due))
    return instances


DATA = _make_instances()


def _load(program_path, function: str):
    """Import the candidate under a fresh module name and return its ``function``."""
    random.seed(0)
    np.random.seed(0)
    spec = importlib.util.spec_from_file_location(f"candidate_{uuid.uuid4().hex}", program_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import a Python module from {program_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, function, None)
    if not callable(fn):
        raise AttributeError(f"the program must define a function {function}()")
    return fn


def _as_scores(raw, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The program's output as real numbers of ``shape`` (a scalar is broadcast), or an error."""
    if np.iscomplexobj(raw):
        raise TypeError(f"{what} returned complex numbers")
    values = np.asarray(raw, dtype=float)
    if values.shape == ():
        return np.full(shape, float(values))
    if values.shape != shape:
        raise ValueError(f"{what} returned shape {values.shape}, expected {shape}")
    return values


def _weighted_tardiness(priority, processing, weight, due) -> float:
    waiting = np.arange(len(processing))
    now, total = 0.0, 0.0
    while len(waiting):
        raw = priority(processing[waiting], weight[waiting], due[waiting], now)
        scores = _as_scores(raw, waiting.shape, "priority")
        pick = int(np.argmax(scores))  # the first NaN, if there is one
        if scores[pick] != scores[pick]:
            raise ValueError("priority returned NaN")
        job = waiting[pick]
        now += processing[job]
        total += weight[job] * max(0.0, now - due[job])
        waiting = np.delete(waiting, pick)
    return total


def score(priority) -> dict[str, float]:
    """Metrics for a dispatch rule (trusted code: the schedule is simulated here)."""
    with np.errstate(all="ignore"):
        costs = [_weighted_tardiness(priority, *instance) for instance in DATA]
    mean = float(np.mean(costs))
    return {"combined_score": -mean, "weighted_tardiness": mean}


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "priority"))
