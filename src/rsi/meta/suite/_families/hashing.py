"""Hashing keys into buckets (the ``hash_*`` problems).

The program defines ``hash_keys(keys)``: ``keys`` is a uint64 array (one key per row, or one key
per element) and it returns as many unsigned or signed integer hashes, one per key; a key goes to
bucket ``hash % buckets``. Score: minus log2 of the mean number of keys in the bucket of a key
(itself included) over what a uniformly random hash gives on average: a good hash scores about 0,
each halving of the crowding is worth one point.

A problem gives its keys, from ``integer_keys`` or ``string_keys``, and its number of buckets.
"""

from __future__ import annotations

import numpy as np

from rsi.meta.suite._families.common import load

BUCKETS = 1024


def integer_keys(seed: int, count: int = 1000) -> np.ndarray:
    """``count`` each of: multiples of 1024, consecutive integers shifted into the high 32 bits,
    addresses of 48-byte records from a base pointer, uniformly random odd 64-bit values."""
    rng = np.random.default_rng(seed)
    counts = np.arange(count, dtype=np.uint64)
    strided = counts * np.uint64(1024)
    high = (counts + np.uint64(7)) << np.uint64(32)
    records = np.uint64(0x7F3A_2000_0000) + counts * np.uint64(48)
    random_keys = rng.integers(0, 2**63, count, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    return np.concatenate([strided, high, records, random_keys])


def string_keys(seed: int, width: int, identifiers: int, words: int, anagrams: int, bases: int) -> np.ndarray:
    """Character codes (one row of ``width`` per key) of ``identifiers`` sequential identifiers
    ("key_000000", ...), ``words`` random lowercase words and ``anagrams`` anagrams of ``bases``
    base words."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    sequential = [f"key_{i:06d}".encode() for i in range(identifiers)]
    random_words = [bytes(rng.choice(letters, width)) for _ in range(words)]
    base_words = [rng.choice(letters, width) for _ in range(bases)]
    mixed = [bytes(rng.permutation(base_words[i % bases])) for i in range(anagrams)]
    keys = sequential + random_words + mixed
    return np.array([np.frombuffer(key, dtype=np.uint8) for key in keys], dtype=np.uint64)


def score(hash_keys, data: np.ndarray, buckets: int = BUCKETS) -> dict[str, float]:
    """Metrics for a hash function (trusted code: buckets and loads are computed here)."""
    random_load = 1.0 + (len(data) - 1) / buckets  # expected bucket load seen by a key, random hash
    with np.errstate(all="ignore"):
        hashes = np.asarray(hash_keys(data.copy()))
    if hashes.shape != (len(data),):
        raise ValueError(f"hash_keys returned shape {hashes.shape}, expected ({len(data)},)")
    if hashes.dtype.kind not in "iub":
        raise TypeError(f"hash_keys must return integers, got dtype {hashes.dtype}")
    slots = hashes.astype(np.uint64) % np.uint64(buckets)
    loads = np.bincount(slots.astype(np.int64), minlength=buckets)
    seen = float((loads.astype(float) ** 2).sum() / len(data))
    return {
        "combined_score": float(-np.log2(seen / random_load)),
        "mean_load_seen": seen,
        "max_load": float(loads.max()),
        "empty_buckets": float((loads == 0).sum()),
    }


def evaluate(program_path, data: np.ndarray, buckets: int = BUCKETS) -> dict[str, float]:
    return score(load(program_path, "hash_keys"), data, buckets)
