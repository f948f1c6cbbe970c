"""Memory from the self-improvement suite: fresh searches of its training problems, counted per operator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import RsiError
from ..improvers import SEED_IMPROVER
from ..memory import memory, merge
from .metautil import MetaEvaluator
from .suite import load_suite


def learn_from_suite(split: str = "train", seeds: Iterable[int] = (1, 2, 3), budget: int = 100, workers: int = 2,
                     log: Any = None, names: Iterable[str] | None = None, **evaluator: Any) -> dict[str, Any]:
    """A memory from fresh searches of the self-improvement suite's ``split`` problems (training by
    default, never test; only ``names`` if given), driven by rsi's seed improver in the sandbox
    (``rsi.meta.metautil``; ``evaluator``: more MetaEvaluator settings, e.g. limits, scratch)."""
    if split == "test":
        raise RsiError("a memory is learned from training (or validation) problems; test problems only measure it")
    problems = load_suite(split)
    if names is not None:
        problems = [p for p in problems if p.name in set(names)]
    with MetaEvaluator(problems, budget, workers, **evaluator) as meta:
        units = meta.units(split, list(seeds))
        found = meta.measure({"seed": SEED_IMPROVER.read_text()}, units, on_result=log)
    result = found["seed"]
    if not result.ok:
        raise RsiError(f"the searches for the memory failed: {result.error}")
    return memory(merge(u.operators for u in result.units), len(result.units), [u.problem for u in result.units])
