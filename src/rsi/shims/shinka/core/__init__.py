"""rsi's stand-in for ``shinka.core``: ``run_shinka_eval``, as ShinkaEvolve evaluators call it.

What it does, per ShinkaEvolve's documentation of the function: load the program at
``program_path``; call its ``experiment_fn_name`` ``num_runs`` times (keyword arguments from
``get_experiment_kwargs(i)``, else ``seed=i + 1``); check each result with ``validate_fn`` (any
invalid run makes the program incorrect, the first message is the error); build the metrics with
``aggregate_metrics_fn`` (else a count and a preview of the results), add the mean and standard
deviation of the run times and, with a validator, the valid / invalid counts and messages; a
non-finite ``combined_score`` makes the program incorrect; an exception anywhere gives the error
metrics (``default_metrics_on_error`` over the built-in ones) and incorrect. ``extra_data`` in the
metrics is pickled to ``extra.pkl``. Then ``correct.json`` and ``metrics.json`` are written into
``results_dir`` and ``(metrics, correct, error)`` returned.

Differences, each printed when it applies: runs are sequential whatever ``run_workers`` says (the
results are the same, in order); early stopping is not implemented (every run is done);
``plotting_fn`` is not called.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

_ERROR_METRICS: dict[str, Any] = {
    "combined_score": 0.0, "execution_time_mean": 0.0, "execution_time_std": 0.0, "num_successful_runs": 0,
    "num_valid_runs": 0, "num_invalid_runs": 0, "all_validation_errors": [],
}


def _note(text: str) -> None:
    print(f"rsi (run_shinka_eval stand-in): {text}", file=sys.stderr)


def _load(program_path: str) -> Any:
    spec = importlib.util.spec_from_file_location("program", program_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the program at {program_path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _finite_or_none(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return True  # not a number: not this check's business


def run_shinka_eval(
    program_path: str,
    results_dir: str,
    experiment_fn_name: str,
    num_runs: int,
    get_experiment_kwargs: Callable[[int], dict[str, Any]] | None = None,
    aggregate_metrics_fn: Callable[[list[Any]], dict[str, Any]] | None = None,
    validate_fn: Callable[[Any], tuple[bool, str | None]] | None = None,
    plotting_fn: Callable[[Any], list[Any]] | None = None,
    default_metrics_on_error: dict[str, Any] | None = None,
    early_stop_method: Any = None,
    early_stop_threshold: float | None = None,
    early_stop_score_fn: Callable[[Any], float] | None = None,
    early_stop_kwargs: dict[str, Any] | None = None,
    run_workers: int = 1,
    max_workers_cap: int | None = None,
    verbose: bool | None = None,
) -> tuple[dict[str, Any], bool, str | None]:
    if verbose is None:
        verbose = os.environ.get("SHINKA_EVAL_VERBOSE", "1") != "0"
    if run_workers < 1:
        raise ValueError("run_workers must be >= 1")
    if run_workers > 1 and num_runs > 1:
        _note(f"run_workers={run_workers}: runs are sequential here (same results, same order)")
    if early_stop_method not in (None, "none"):
        _note("early stopping is not implemented: every run is done")
    correct = True
    error: str | None = None
    results: list[Any] = []
    times: list[float] = []
    messages: list[str] = []
    valid = invalid = 0
    try:
        module = _load(program_path)
        experiment = getattr(module, experiment_fn_name, None)
        if experiment is None:
            raise AttributeError(f"Experiment function '{experiment_fn_name}' not found in {program_path}")
        for i in range(num_runs):
            kwargs = get_experiment_kwargs(i) if get_experiment_kwargs else {"seed": i + 1}
            start = time.perf_counter()
            result = experiment(**kwargs)
            times.append(time.perf_counter() - start)
            results.append(result)
            if verbose:
                print(f"run {i + 1}/{num_runs} done in {times[-1]:.3f}s")
            if validate_fn is not None:
                ok, message = validate_fn(result)
                if ok:
                    valid += 1
                else:
                    invalid += 1
                    correct = False
                    if message:
                        error = error or f"Validation failed: {message}"
                        if message not in messages:
                            messages.append(message)
        if aggregate_metrics_fn is not None:
            metrics = aggregate_metrics_fn(results)
        else:
            metrics = {"num_successful_runs": len(results),
                       "first_run_result_type": str(type(results[0])) if results else "N/A",
                       "raw_results_preview": str(results[:2]) if results else "N/A"}
        metrics["execution_time_mean"] = statistics.fmean(times) if times else 0.0
        metrics["execution_time_std"] = statistics.pstdev(times) if times else 0.0
        if validate_fn is not None:
            metrics["num_valid_runs"] = valid
            metrics["num_invalid_runs"] = invalid
            metrics["all_validation_errors"] = messages
        if "combined_score" in metrics and not _finite_or_none(metrics["combined_score"]):
            correct = False
            error = error or f"combined_score is not finite ({metrics['combined_score']})"
    except Exception as exc:  # noqa: BLE001 - the program's failure is the evaluation's result
        print(f"Evaluation error: {exc}")
        chosen = dict(default_metrics_on_error or {})
        metrics = {key: chosen.get(key, value) for key, value in _ERROR_METRICS.items()}
        if validate_fn is not None:
            metrics.setdefault("num_invalid_runs", len(results) or num_runs)
            metrics.setdefault("all_validation_errors", [str(exc)])
        correct, error = False, str(exc)
    if "extra_data" in metrics:
        os.makedirs(results_dir, exist_ok=True)
        with open(os.path.join(results_dir, "extra.pkl"), "wb") as f:
            pickle.dump(metrics.pop("extra_data"), f)
        if plotting_fn is not None:
            _note("plotting_fn is not called")
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": correct, "error": error}, f, indent=4)
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=4, default=_json_default)
    return metrics, correct, error


__all__ = ["run_shinka_eval"]
