"""Hashing strings into 1024 buckets: 4000 fixed 10-character keys.

Keys: 1500 sequential identifiers ("key_000000", "key_000001", ...), 1500 random lowercase words
and 1000 anagrams of 20 base words. The program defines ``hash_keys(chars)``: ``chars`` is a
(4000, 10) uint64 array of character codes (one row per key). The contract and the score: see
``rsi/meta/suite/_families/hashing.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import hashing

DATA = hashing.string_keys(6601, width=10, identifiers=1500, words=1500, anagrams=1000, bases=20)


def evaluate(program_path) -> dict[str, float]:
    return hashing.evaluate(program_path, DATA)
