"""Trusted evaluator: a character-level language model trained by the candidate, scored here.

Split contract (rsi runs each half in its own process):
produce(program_path) -> weights   untrusted, in the sandbox: the candidate's ``train(text,
                                   alphabet, seconds)`` on the training text, which returns the
                                   weights of a model of the family below
score(weights) -> metrics          trusted, in a process the candidate never touched: bits per
                                   character of that model on the validation text
produce_holdout / score_holdout    the same training, scored on the test text (reporting only)

The candidate never reads the validation or the test text: this module loads only the training
text when the sandbox's worker imports it (the candidate's process inherits that, and nothing
else of data/); the other two are read by ``score`` and ``score_holdout``, which run in the
trusted scorer process; and the sandbox lets no candidate read this folder (problem.toml sets
``holdout_reads_folder = false``, so not even in held-out evaluations).

The model family (what ``score`` runs): a window of the K previous characters (the text is
preceded by K newlines), each looked up in an embedding table, concatenated, through one tanh
hidden layer, then a softmax over the alphabet; optionally a direct linear path from the window to
the output (Bengio et al. 2003). Weights, as numpy arrays (float32 is enough):

    embed  (V, D)        w1 (K*D, H)   b1 (H,)   w2 (H, V)   b2 (V,)   skip (K*D, V), optional

with V = len(ALPHABET); K and D follow from the shapes (K*D = w1's rows, D = embed's columns).
logits = tanh(x @ w1 + b1) @ w2 + b2 [+ x @ skip], x the window's embeddings, row after row.
Bits per character = mean over the text of -log2 p(next character); lower is better, and
combined_score is its negative. A uniform guess over the alphabet is log2(62) = 5.95 bits.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import os
import sys
import time
import types
from pathlib import Path

# One BLAS thread: the budget is CPU seconds, and a thread pool spinning on a loaded machine burns
# them (3 s of training, load 20 on 2 cores: 3.54 bits per character with 2 threads, 2.51 with 1).
# Takes effect when this module is the first to import numpy (rsi's worker, `python evaluate.py`).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
ALPHABET = "\n !'(),-.:;?ABCDEFGHIJKLMNOPRSTUVWYZabcdefghijklmnopqrstuvwxyz"  # every character of the corpus
TRAIN_SECONDS = 12.0  # CPU seconds the candidate is told to train for (the sandbox's cap is problem.toml's)
MAX_CONTEXT = 64  # characters a window may span
MAX_HIDDEN = 4096
MAX_EMBED = 256


def _read(name: str) -> str:
    return gzip.decompress((DATA / f"{name}.txt.gz").read_bytes()).decode("ascii")


TRAIN_TEXT = _read("train")  # loaded on import: the candidate's input, and nothing else of data/


@functools.cache
def _scored_text(name: str) -> np.ndarray:
    """Validation or test text as alphabet indices (trusted side only)."""
    return encode(_read(name))


def encode(text: str) -> np.ndarray:
    table = np.full(256, -1, dtype=np.int64)
    table[np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)] = np.arange(len(ALPHABET))
    codes = table[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    if codes.size and codes.min() < 0:
        raise ValueError("text outside the alphabet")
    return codes


def load_train(program_path: str):
    """Import the program under a fresh module name and return its ``train`` function."""
    path = Path(program_path)
    code = compile(path.read_text(), str(path), "exec")
    module = types.ModuleType(f"rsi_tinylm_candidate_{next(_counter)}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)
    finally:
        sys.modules.pop(module.__name__, None)
    train = getattr(module, "train", None)
    if not callable(train):
        raise ValueError(f"{path} defines no function `train(text, alphabet, seconds)` returning weights")
    return train


_counter = itertools.count()


def produce(program_path: str) -> dict:
    """Untrusted side: train on the training text within TRAIN_SECONDS of CPU, return the weights."""
    train = load_train(program_path)
    start = time.process_time()
    weights = train(TRAIN_TEXT, ALPHABET, TRAIN_SECONDS)
    if not isinstance(weights, dict):
        raise TypeError(f"train() returned a {type(weights).__name__}, not a dict of weight arrays")
    out = {str(k): np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    out["train_cpu_seconds"] = np.float64(time.process_time() - start)  # reported, not trusted
    return out


def check_model(data: object) -> dict[str, np.ndarray]:
    """The weights as float64 arrays of consistent shapes, or ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a dict of weight arrays, got {type(data).__name__}")
    data = {k: v for k, v in data.items() if k != "train_cpu_seconds"}
    required, optional = {"embed", "w1", "b1", "w2", "b2"}, {"skip"}
    if not required <= set(data) <= required | optional:
        raise ValueError(f"expected weights {sorted(required)} (and optionally 'skip'), got {sorted(data)}")
    w: dict[str, np.ndarray] = {}
    for name, value in data.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            raise ValueError(f"weight {name!r} is not a numeric array")
        w[name] = value.astype(np.float64)
        if not np.all(np.isfinite(w[name])):
            raise ValueError(f"weight {name!r} has NaN or infinite values")
    V = len(ALPHABET)
    for name, ndim in (("embed", 2), ("w1", 2), ("b1", 1), ("w2", 2), ("b2", 1), ("skip", 2)):
        if name in w and w[name].ndim != ndim:
            raise ValueError(f"weight {name!r} has shape {w[name].shape}: expected {ndim} dimensions")
    (v_embed, d), (kd, h) = w["embed"].shape, w["w1"].shape
    if v_embed != V:
        raise ValueError(f"embed has {v_embed} rows: expected one per alphabet character ({V})")
    if not (1 <= d <= MAX_EMBED and 1 <= h <= MAX_HIDDEN) or kd % d or not 1 <= kd // d <= MAX_CONTEXT:
        raise ValueError(f"w1 {w['w1'].shape} and embed {w['embed'].shape} do not make a window of 1..{MAX_CONTEXT} "
                         f"characters (embedding 1..{MAX_EMBED}, hidden 1..{MAX_HIDDEN})")
    expected = {"b1": (h,), "w2": (h, V), "b2": (V,), "skip": (kd, V)}
    for name, shape in expected.items():
        if name in w and w[name].shape != shape:
            raise ValueError(f"weight {name!r} has shape {w[name].shape}: expected {shape}")
    return w


def bits_per_char(w: dict[str, np.ndarray], codes: np.ndarray, chunk: int = 4096) -> float:
    """Mean -log2 p(next character) of the model ``w`` over ``codes`` (trusted code)."""
    d = w["embed"].shape[1]
    k = w["w1"].shape[0] // d
    newline = ALPHABET.index("\n")
    padded = np.concatenate([np.full(k, newline, dtype=np.int64), codes])
    total = 0.0
    for start in range(0, codes.size, chunk):
        stop = min(start + chunk, codes.size)
        windows = np.lib.stride_tricks.sliding_window_view(padded[start:stop + k - 1], k)
        x = w["embed"][windows].reshape(stop - start, k * d)
        logits = np.tanh(x @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]
        if "skip" in w:
            logits = logits + x @ w["skip"]
        logits -= logits.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(logits).sum(axis=1))
        total += float((log_z - logits[np.arange(stop - start), codes[start:stop]]).sum())
    bpc = float(total / codes.size / np.log(2))
    if not np.isfinite(bpc):
        raise ValueError("the model's predictions are not finite")
    return bpc


def _metrics(data: object, text: str) -> dict[str, float]:
    w = check_model(data)
    bpc = bits_per_char(w, _scored_text(text))
    params = sum(v.size for v in w.values())
    d = w["embed"].shape[1]
    out = {"combined_score": -bpc, "bpc": bpc, "parameters": float(params),
           "context": float(w["w1"].shape[0] // d), "hidden": float(w["w1"].shape[1])}
    seconds = data.get("train_cpu_seconds") if isinstance(data, dict) else None
    if isinstance(seconds, int | float) and np.isfinite(seconds):
        out["train_cpu_seconds"] = float(seconds)
    return out


def score(data: object) -> dict[str, float]:
    """Trusted side: bits per character on the validation text."""
    return _metrics(data, "validation")


def produce_holdout(program_path: str) -> dict:
    return produce(program_path)


def score_holdout(data: object) -> dict[str, float]:
    """Trusted side: bits per character on the test text (reporting only)."""
    return _metrics(data, "test")


def evaluate(program_path: str) -> dict[str, float]:
    return score(produce(program_path))


def evaluate_holdout(program_path: str) -> dict[str, float]:
    return score_holdout(produce_holdout(program_path))


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "initial.py")
    print("validation", evaluate(target))
