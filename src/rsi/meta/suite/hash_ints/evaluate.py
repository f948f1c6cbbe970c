"""Hashing 64-bit integers into 1024 buckets: 4000 fixed structured keys.

Keys: 1000 multiples of 1024, 1000 consecutive integers shifted into the high 32 bits, 1000
addresses of 48-byte records from a base pointer, 1000 uniformly random 64-bit values. The program
defines ``hash_keys(keys)``: ``keys`` is a uint64 array and it returns as many unsigned or signed
integer hashes; a key goes to bucket ``hash % 1024``. Score: minus log2 of the mean number of keys
in the bucket of a key (itself included) over what a uniformly random hash gives on average: a good
hash scores about 0, each halving of the crowding is worth one point.
"""

from __future__ import annotations

import importlib.util
import random
import uuid

import numpy as np

BUCKETS = 1024


def _make_keys() -> np.ndarray:
    rng = np.random.default_rng(6602)
    counts = np.arange(1000, dtype=np.uint64)
    strided = counts * np.uint64(1024)
    high = (counts + np.uint64(7)) << np.uint64(32)
    records = np.uint64(0x7F3A_2000_0000) + counts * np.uint64(48)
    random_keys = rng.integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return np.concatenate([strided, high, records, random_keys])


DATA = _make_keys()
RANDOM_LOAD = 1.0 + (len(DATA) - 1) / BUCKETS  # expected bucket load seen by a key, random hash


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


def score(hash_keys) -> dict[str, float]:
    """Metrics for a hash function (trusted code: buckets and loads are computed here)."""
    with np.errstate(all="ignore"):
        hashes = np.asarray(hash_keys(DATA.copy()))
    if hashes.shape != (len(DATA),):
        raise ValueError(f"hash_keys returned shape {hashes.shape}, expected ({len(DATA)},)")
    if hashes.dtype.kind not in "iub":
        raise TypeError(f"hash_keys must return integers, got dtype {hashes.dtype}")
    buckets = hashes.astype(np.uint64) % np.uint64(BUCKETS)
    loads = np.bincount(buckets.astype(np.int64), minlength=BUCKETS)
    seen = float((loads.astype(float) ** 2).sum() / len(DATA))
    return {
        "combined_score": float(-np.log2(seen / RANDOM_LOAD)),
        "mean_load_seen": seen,
        "max_load": float(loads.max()),
        "empty_buckets": float((loads == 0).sum()),
    }


def evaluate(program_path) -> dict[str, float]:
    return score(_load(program_path, "hash_keys"))
