"""Hashing 64-bit integers into 1024 buckets: 4000 fixed structured keys.

Keys: 1000 multiples of 1024, 1000 consecutive integers shifted into the high 32 bits, 1000
addresses of 48-byte records from a base pointer, 1000 uniformly random 64-bit values. The program
defines ``hash_keys(keys)``: ``keys`` is a uint64 array of 4000 keys. The contract and the score:
see ``rsi/meta/suite/_families/hashing.py``.
"""

from __future__ import annotations

from rsi.meta.suite._families import hashing

DATA = hashing.integer_keys(6602)


def evaluate(program_path) -> dict[str, float]:
    return hashing.evaluate(program_path, DATA)
