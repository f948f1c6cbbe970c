"""Single-machine scheduling, total weighted tardiness, by dispatch rule (the ``sched_*`` problems).

Whenever the machine is free, the waiting job with the highest ``priority(processing, weight, due,
now)`` runs next (arrays over the waiting jobs, ``now`` the current time). Score: minus the mean
total weighted tardiness.

A problem gives its instances: ``instances(seed, jobs, tardiness, spread)``, the classic generator
of Potts and Van Wassenhove.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families.common import as_scores, load

INSTANCES = 5

Instance = tuple[np.ndarray, np.ndarray, np.ndarray]  # processing times, weights, due dates


def instances(seed: int, jobs: int, tardiness: float, spread: float, count: int = INSTANCES) -> list[Instance]:
    """Processing times uniform on 1..20, weights on 1..10, due dates uniform on
    [(1 - T - R/2) P, (1 - T + R/2) P] (rounded) with P the total processing time, T the
    tardiness factor and R the ``spread`` of the due dates."""
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(count):
        processing = rng.integers(1, 21, jobs).astype(float)
        weight = rng.integers(1, 11, jobs).astype(float)
        total = processing.sum()
        low = max(0.0, (1 - tardiness - spread / 2) * total)
        due = np.round(rng.uniform(low, (1 - tardiness + spread / 2) * total, jobs))
        made.append((processing, weight, due))
    return made


def weighted_tardiness(priority, processing: np.ndarray, weight: np.ndarray, due: np.ndarray) -> float:
    waiting = np.arange(len(processing))
    now, total = 0.0, 0.0
    while len(waiting):
        raw = priority(processing[waiting], weight[waiting], due[waiting], now)
        scores = as_scores(raw, waiting.shape, "priority")
        pick = int(np.argmax(scores))  # the first NaN, if there is one
        if scores[pick] != scores[pick]:
            raise ValueError("priority returned NaN")
        job = waiting[pick]
        now += processing[job]
        total += weight[job] * max(0.0, now - due[job])
        waiting = np.delete(waiting, pick)
    return total


def score(priority, data: list[Instance]) -> dict[str, float]:
    """Metrics for a dispatch rule (trusted code: the schedule is simulated here)."""
    with np.errstate(all="ignore"):
        costs = [weighted_tardiness(priority, *instance) for instance in data]
    mean = float(np.mean(costs))
    return {"combined_score": -mean, "weighted_tardiness": mean}


def evaluate(program_path, data: list[Instance]) -> dict[str, float]:
    return score(load(program_path, "priority"), data)
