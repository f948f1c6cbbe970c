"""Plain data across the trust boundary: what ``produce`` returns, encoded in the candidate's
process and decoded in the trusted scorer.

Allowed: None, bool, int, float (NaN and infinities included: ``score`` must check), str, lists
and tuples (decoded as lists), dicts with str keys, numpy arrays of booleans or numbers (no
object, string or structured dtypes), numpy scalars (decoded as Python numbers). Anything else
(a class instance, a float subclass with a lying ``__eq__``, an object array) is refused when
encoding. The encoding runs beside untrusted code, so the decoder trusts nothing: it checks the
magic, the sizes, the nesting depth, every dtype and shape, and builds fresh objects; nothing is
unpickled or called.

Layout: ``b"RSI1"``, a 4-byte big-endian length, a JSON header ``{"v": tree, "a": [[dtype,
shape, offset, nbytes], ...]}`` in which an array is the object ``{"\\u0000nd": index}``, then
the arrays' bytes.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

# Bound when the zygote imports this module, before any candidate runs: a candidate that
# replaces builtins or json.dumps in its process cannot steer the encoder through them.
_type, _len, _isinstance, _str = type, len, isinstance, str
_PLAIN = (type(None), bool, int, float, str)
_SEQUENCES = (list, tuple)
_dumps = json.dumps

MAGIC = b"RSI1"
HEAD = struct.Struct(">I")
TAG = "\x00nd"
MAX_DEPTH = 64
_DTYPE = re.compile(r"^[<>|=][biufc][0-9]{1,2}$")


class DataError(ValueError):
    """Data that cannot cross the boundary: an unsupported type, too big, malformed."""


def _numpy():
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is a dependency of rsi
        return None
    return numpy


def encode(value: object, limit: int) -> bytes:
    """``value`` as bytes, at most ``limit`` of them; DataError otherwise."""
    np = _numpy()
    arrays: list = []
    total = [0]

    def walk(x: Any, depth: int) -> object:  # Any: x's type is checked by exact type(), not isinstance
        if depth > MAX_DEPTH:
            raise DataError(f"produced data nested more than {MAX_DEPTH} deep")
        t = _type(x)
        if t in _PLAIN:
            return x
        if t in _SEQUENCES:
            return [walk(v, depth + 1) for v in x]
        if t is dict:
            out = {}
            for k, v in x.items():
                if _type(k) is not _str or k.startswith("\x00"):
                    raise DataError(f"produced data has a dict key of type {_type(k).__name__}; "
                                    "keys must be plain str")
                out[k] = walk(v, depth + 1)
            return out
        if np is not None and t is np.ndarray:
            if x.dtype.kind not in "biufc" or x.dtype.fields is not None:
                raise DataError(f"produced a numpy array of dtype {x.dtype}; only booleans and "
                                "numbers can cross the boundary")
            total[0] += x.nbytes
            if total[0] > limit:
                raise DataError(f"produced data larger than {limit} bytes")
            arrays.append(np.ascontiguousarray(x))
            return {TAG: _len(arrays) - 1}
        if np is not None and _isinstance(x, np.generic) and t.__module__ == "numpy" \
                and x.dtype.kind in "biuf":
            return x.item()
        raise DataError(f"produced an object of type {t.__module__}.{t.__qualname__}; data must "
                        "be None, bool, int, float, str, list, tuple, dict or a numeric numpy array")

    tree = walk(value, 0)
    meta, offset = [], 0
    for arr in arrays:
        meta.append([arr.dtype.str, list(arr.shape), offset, arr.nbytes])
        offset += -(-arr.nbytes // 8) * 8
    try:
        head = _dumps({"v": tree, "a": meta}, separators=(",", ":")).encode()
    except (ValueError, RecursionError) as exc:
        raise DataError(f"produced data cannot be encoded: {exc}") from None
    if _len(head) + offset + 8 > limit:
        raise DataError(f"produced data larger than {limit} bytes")
    parts = [MAGIC, HEAD.pack(_len(head)), head]
    for arr, (_, _, _, nbytes) in zip(arrays, meta, strict=True):
        parts.append(arr.tobytes())
        parts.append(b"\0" * (-(-nbytes // 8) * 8 - nbytes))
    return b"".join(parts)


def decode(blob: bytes, limit: int) -> object:
    """The value ``encode`` made, rebuilt from plain types; DataError for anything else."""
    if len(blob) > limit:
        raise DataError(f"produced data larger than {limit} bytes")
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise DataError("produced data is not in rsi's format")
    (n,) = HEAD.unpack_from(blob, 4)
    if n > len(blob) - 8:
        raise DataError("produced data is truncated")
    try:
        header = json.loads(blob[8 : 8 + n])
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise DataError("produced data has a malformed header") from None
    if not isinstance(header, dict) or set(header) != {"v", "a"} or type(header["a"]) is not list:
        raise DataError("produced data has a malformed header")
    body = memoryview(blob)[8 + n :]
    arrays = [_array(spec, body) for spec in header["a"]]
    return _rebuild(header["v"], arrays, 0)


def _array(spec: object, body: memoryview):
    np = _numpy()
    if np is None:
        raise DataError("numpy arrays need numpy")
    if type(spec) is not list or len(spec) != 4:
        raise DataError("produced data has a malformed array")
    dtype, shape, offset, nbytes = spec
    if type(dtype) is not str or not _DTYPE.match(dtype) or type(shape) is not list \
            or len(shape) > 32 or any(type(d) is not int or d < 0 for d in shape) \
            or type(offset) is not int or type(nbytes) is not int or offset < 0 or nbytes < 0:
        raise DataError("produced data has a malformed array")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DataError(f"produced data has an unknown dtype {dtype!r}") from None
    if dt.kind not in "biufc" or dt.fields is not None or dt.hasobject:
        raise DataError(f"produced data has a forbidden dtype {dtype!r}")
    count = math.prod(shape)
    if count * dt.itemsize != nbytes or offset + nbytes > len(body):
        raise DataError("produced data has an array whose size does not match its bytes")
    return np.frombuffer(body, dtype=dt, count=count, offset=offset).reshape(shape).copy()


def _rebuild(x: Any, arrays: list, depth: int) -> object:  # Any: x's type is checked by exact type()
    if depth > MAX_DEPTH + 1:
        raise DataError(f"produced data nested more than {MAX_DEPTH} deep")
    t = type(x)
    if x is None or t is bool or t is int or t is float or t is str:
        return x
    if t is list:
        return [_rebuild(v, arrays, depth + 1) for v in x]
    if t is dict:
        if TAG in x:
            index = x[TAG]
            if len(x) != 1 or type(index) is not int or not 0 <= index < len(arrays):
                raise DataError("produced data has a malformed array reference")
            return arrays[index]
        return {k: _rebuild(v, arrays, depth + 1) for k, v in x.items()}
    raise DataError(f"produced data holds a {t.__name__}")  # unreachable for JSON
