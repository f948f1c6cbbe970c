"""The ed25519 signature on a run's audit head: made when a run ends, checked by `rsi audit verify`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import rsi
from rsi.oversight import audit, signing
from rsi.storage import Store

pytestmark = pytest.mark.skipif(not signing.available(), reason="the sign extra (cryptography) is not installed")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def keys(tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    monkeypatch.setenv("RSI_KEY_DIR", str(folder))
    return folder


def _verify(run: Path):
    store = Store.open(run)
    try:
        return signing.verify_signature(run, store.conn)
    finally:
        store.close()


def test_a_run_is_signed_when_it_ends_and_verifies(target_problem, tmp_path, keys):
    out = tmp_path / "r"
    rsi.improve(target_problem, out, budget=3, seed=1)
    assert (out / signing.SIG_FILE).exists()
    assert (keys / signing.KEY_FILE).stat().st_mode & 0o077 == 0  # this user's only
    assert not str(keys).startswith(str(out))
    report = _verify(out)
    assert report.status == "valid", report.detail
    env = {"PYTHONPATH": str(ROOT / "src"), "RSI_KEY_DIR": str(keys), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "rsi.cli", "audit", "verify", str(out)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0 and "signature: valid" in done.stdout, done.stdout + done.stderr


def test_a_forged_signature_file_or_another_key_is_refused(target_problem, tmp_path, keys, monkeypatch):
    out = tmp_path / "r"
    rsi.improve(target_problem, out, budget=3, seed=1)
    sig = out / signing.SIG_FILE
    record = json.loads(sig.read_text())
    record["events"] += 1  # claims more than was signed
    sig.write_text(json.dumps(record))
    assert _verify(out).status == "invalid"
    monkeypatch.setenv("RSI_KEY_DIR", str(tmp_path / "other-keys"))  # a verifier with another key
    store = Store.open(out)
    try:
        record["events"] -= 1
        sig.write_text(json.dumps(record))
        report = signing.verify_signature(out, store.conn)
    finally:
        store.close()
    assert report.status == "invalid" and "not this key folder's" in report.detail


def test_a_signed_head_no_longer_in_the_chain_is_caught(target_problem, tmp_path, keys):
    """A trail replaced wholesale by another run's (consistent, every hash right) no longer holds the
    signed head: the signature tells them apart where the chain check cannot."""
    out, other = tmp_path / "r", tmp_path / "other"
    rsi.improve(target_problem, out, budget=3, seed=1)
    rsi.improve(target_problem, other, budget=3, seed=2)
    (out / "rsi.db").unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        (out / f"rsi.db{suffix}").unlink(missing_ok=True)
    source, target = sqlite3.connect(other / "rsi.db"), sqlite3.connect(out / "rsi.db")
    source.backup(target)
    source.close()
    target.close()
    store = Store.open(out)
    try:
        assert audit.verify(store.conn).ok  # the chain alone: intact
        report = signing.verify_signature(out, store.conn)
    finally:
        store.close()
    assert report.status == "invalid" and "no longer in the trail" in report.detail


def test_an_unsigned_run_says_so(target_problem, tmp_path, keys):
    out = tmp_path / "r"
    rsi.improve(target_problem, out, budget=3, seed=1)
    (out / signing.SIG_FILE).unlink()
    report = _verify(out)
    assert report.status == "unsigned" and report.ok
