"""The tiny language model example: the trusted scorer's checks, its bits per character, and a
candidate that tries to read the validation or test text (refused by the sandbox)."""

from __future__ import annotations

import importlib.util
import math
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rsi.sandbox.capabilities import capabilities
from rsi.sandbox.pool import EvaluatorPool
from rsi.sandbox.types import EvalResult, EvalTask, Limits

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "tinylm"
spec = importlib.util.spec_from_file_location("test_tinylm_evaluate", FOLDER / "evaluate.py")
ev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ev)
V = len(ev.ALPHABET)
FULL = capabilities()["level"] == "full"


def weights(k=3, d=4, h=5, skip=False, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = {"embed": rng.normal(size=(V, d)), "w1": rng.normal(size=(k * d, h)), "b1": rng.normal(size=h),
         "w2": rng.normal(size=(h, V)), "b2": rng.normal(size=V)}
    if skip:
        w["skip"] = rng.normal(size=(k * d, V))
    return w


def test_corpus_is_three_disjoint_texts_in_one_alphabet():
    texts = {name: ev._read(name) for name in ("train", "validation", "test")}
    assert [len(texts[n]) > 50_000 for n in texts] == [True] * 3
    assert set("".join(texts.values())) == set(ev.ALPHABET)
    assert texts["validation"][:2000] not in texts["train"] and texts["test"][:2000] not in texts["train"]


def test_a_uniform_model_scores_log2_of_the_alphabet():
    w = weights()
    w["w2"][:] = 0.0
    w["b2"][:] = 0.0
    assert ev.score(w)["bpc"] == pytest.approx(math.log2(V), abs=1e-9)


def test_bits_per_char_matches_a_direct_computation():
    w = weights(k=2, d=3, h=4, skip=True)
    codes = ev.encode("In the beginning God created the heaven")
    padded = np.concatenate([[ev.ALPHABET.index("\n")] * 2, codes])
    total = 0.0
    for t, c in enumerate(codes):
        x = np.concatenate([w["embed"][padded[t]], w["embed"][padded[t + 1]]])
        logits = np.tanh(x @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"] + x @ w["skip"]
        total -= logits[c] - np.log(np.exp(logits).sum())
    assert ev.bits_per_char(w, codes, chunk=7) == pytest.approx(total / codes.size / math.log(2))


def test_score_reports_the_model_shape():
    m = ev.score({**weights(k=3, d=4, h=5), "train_cpu_seconds": 1.5})
    assert (m["context"], m["hidden"], m["train_cpu_seconds"]) == (3.0, 5.0, 1.5)
    assert m["combined_score"] == -m["bpc"] and m["bpc"] > 0


def _bad(change) -> dict:
    w = weights()
    change(w)
    return w


@pytest.mark.parametrize(("data", "message"), [
    ([1.0, 2.0], "dict of weight arrays"),
    (_bad(lambda w: w.pop("b1")), "expected weights"),
    (_bad(lambda w: w.update(extra=np.zeros(3))), "expected weights"),
    (_bad(lambda w: w["w2"].__setitem__((0, 0), np.nan)), "NaN or infinite"),
    (_bad(lambda w: w["b2"].__setitem__(0, np.inf)), "NaN or infinite"),
    (_bad(lambda w: w.update(embed=np.zeros((V - 1, 4)))), "one per alphabet character"),
    (_bad(lambda w: w.update(w1=np.zeros((13, 5)))), "window"),
    (_bad(lambda w: w.update(w2=np.zeros((5, V + 1)))), "'w2' has shape"),
    (_bad(lambda w: w.update(b1=np.zeros((5, 1)))), "dimensions"),
    (_bad(lambda w: w.update(skip=np.zeros((12, 3)))), "'skip' has shape"),
    (_bad(lambda w: w.update(b2="not an array")), "not a numeric array"),
    (_bad(lambda w: w.update(w1=np.zeros((4 * 65, 5)))), "window"),
])
def test_score_rejects_invalid_models(data, message):
    with pytest.raises(ValueError, match=message):
        ev.score(data)


# ---------------------------------------------------------------- through the real sandbox

QUICK = '''
import numpy as np

def train(text, alphabet, seconds):
    v = len(alphabet)
    return {"embed": np.zeros((v, 2)), "w1": np.zeros((4, 3)), "b1": np.zeros(3),
            "w2": np.zeros((3, v)), "b2": np.zeros(v)}
'''

READS_FILE = '''
import os
import sys

def train(text, alphabet, seconds):
    for module in list(sys.modules.values()):
        path = getattr(module, "DATA", None)
        if path is not None and hasattr(module, "_scored_text"):
            with open(os.path.join(str(path), "NAME.txt.gz"), "rb") as f:
                f.read()
            return {"read": True}
    raise RuntimeError("evaluator module not found")
'''

READS_THROUGH_EVALUATOR = '''
import sys
def train(text, alphabet, seconds):
    for module in list(sys.modules.values()):
        if hasattr(module, "_scored_text"):
            module._scored_text.cache_clear()
            return {"codes": module._scored_text("NAME")}
    raise RuntimeError("evaluator module not found")
'''


def run(pool: EvaluatorPool, source: str, kind: str = "train") -> EvalResult:
    pool.submit(EvalTask(candidate_id=1, source=textwrap.dedent(source), seed=0, kind=kind))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        results = pool.collect(timeout=0.5)
        if results:
            return results[0]
    raise AssertionError("no result")


@pytest.fixture(scope="module")
def confined(tmp_path_factory):
    limits = Limits(wall_seconds=60, cpu_seconds=20, holdout_reads_folder=False)
    with EvaluatorPool(FOLDER / "evaluate.py", 1, limits, tmp_path_factory.mktemp("tinylm")) as pool:
        yield pool


def test_a_quick_model_is_scored_on_validation_and_test(confined):
    assert confined.modes == {"train": "split", "holdout": "split"}
    for kind in ("train", "holdout"):
        r = run(confined, QUICK, kind)
        assert r.status == "ok", r.error
        assert r.metrics["bpc"] == pytest.approx(math.log2(V))


@pytest.mark.skipif(not FULL, reason="needs the full sandbox (Landlock) to confine reads")
@pytest.mark.parametrize("kind", ["train", "holdout"])
@pytest.mark.parametrize("text", ["validation", "test"])
@pytest.mark.parametrize("attack", [READS_FILE, READS_THROUGH_EVALUATOR])
def test_a_candidate_cannot_read_the_scored_texts(confined, kind, text, attack):
    r = run(confined, attack.replace("NAME", text), kind)
    assert r.status == "error"
    assert "PermissionError" in (r.error or ""), r.error


@pytest.mark.skipif(not FULL, reason="needs the full sandbox (Landlock) to confine reads")
def test_held_out_produce_may_read_the_folder_unless_the_problem_says_no(tmp_path):
    """The default (holdout_reads_folder = true, for bin packing's test instances) lets a held-out
    produce read the evaluator's folder, and a training one not: the setting is what confines it."""
    with EvaluatorPool(FOLDER / "evaluate.py", 1, Limits(wall_seconds=60, cpu_seconds=20), tmp_path) as pool:
        held = run(pool, READS_FILE.replace("NAME", "test"), "holdout")
        train = run(pool, READS_FILE.replace("NAME", "test"), "train")
    assert held.status == "error" and "expected weights" in (held.error or "")  # it read the file
    assert train.status == "error" and "PermissionError" in (train.error or "")


def test_confining_a_held_out_evaluation_that_scores_beside_is_refused(tmp_path):
    from rsi.errors import ProblemError

    evaluator = tmp_path / "p" / "evaluate.py"
    evaluator.parent.mkdir()
    evaluator.write_text("def evaluate(path):\n    return {'combined_score': 1.0}\n\n"
                         "def evaluate_holdout(path):\n    return {'combined_score': 1.0}\n")
    with pytest.raises(ProblemError, match="holdout_reads_folder = false"):
        EvaluatorPool(evaluator, 1, Limits(holdout_reads_folder=False), tmp_path / "s")
