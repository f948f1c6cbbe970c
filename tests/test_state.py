"""`rsi audit verify` checks the tables against the trail, not only the trail against itself."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import rsi
from rsi.oversight.state import verify_state

RSI = [sys.executable, "-m", "rsi.cli"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, request) -> Path:
    from conftest import write_problem

    tmp = tmp_path_factory.mktemp("state")
    problem = write_problem(tmp / "p", toml="[oversight]\npromote_every = 10\nholdout_repeats = 2\n")
    rsi.improve(problem, tmp / "run", budget=25, seed=4)
    return tmp / "run"


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(run, out)
    return out


def _edit(run: Path, sql: str, *args) -> None:
    conn = sqlite3.connect(run / "rsi.db")
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def _report(run: Path):
    conn = sqlite3.connect(run / "rsi.db")
    conn.row_factory = sqlite3.Row
    try:
        return verify_state(conn)
    finally:
        conn.close()


def test_an_untouched_run_agrees_with_its_trail(finished):
    report = _report(finished)
    assert report.ok and report.rows >= 25, report.problems
    done = subprocess.run([*RSI, "audit", "verify", str(finished)], capture_output=True, text=True)
    assert done.returncode == 0 and "state agrees with the trail" in done.stdout


@pytest.mark.parametrize("sql, args, expected", [
    ("UPDATE candidates SET score=100 WHERE id=(SELECT MAX(id) FROM candidates WHERE status='ok')", (),
     r"candidate \d+: differs from event #\d+ \(score -?[\d.e+-]+ -> 100"),
    ("UPDATE candidates SET status='ok', score=5 WHERE id=(SELECT MIN(id) FROM candidates WHERE status!='ok')", (),
     r"status '\w+' -> 'ok'"),
    ("UPDATE candidates SET source=source || '\n# planted' WHERE id=1", (), r"candidate 1: .*source changed"),
    ("UPDATE candidates SET metrics='{\"combined_score\": 9}' WHERE id=1", (), r"metrics changed"),
    ("DELETE FROM candidates WHERE id=(SELECT MAX(id) FROM candidates)", (), r"missing from the table \(deleted\)"),
    ("INSERT INTO candidates(id, proposer, status, score, source, proposed_at) VALUES (999, 'mutate', 'ok', 1e9, "
     "'x = 1', 0)", (), r"candidate 999: in the table, but no event recorded it"),
    ("UPDATE candidates SET parent_id=NULL WHERE id=(SELECT MAX(id) FROM candidates)", (), r"parent_id \d+ -> None"),
])
def test_a_hand_edit_of_the_tables_is_caught(finished, tmp_path, sql, args, expected):
    run = _copy(finished, tmp_path)
    _edit(run, sql, *args)
    report = _report(run)
    assert not report.ok
    assert any(re.search(expected, p) for p in report.problems), report.problems
    done = subprocess.run([*RSI, "audit", "verify", str(run)], capture_output=True, text=True)
    assert done.returncode == 1 and "audit trail intact" in done.stdout and "STATE DIFFERS" in done.stdout
    shown = subprocess.run([*RSI, "show", str(run)], capture_output=True, text=True)
    assert shown.returncode == 2 and "--inspect" in shown.stderr  # refused, with the way to look anyway
    inspected = subprocess.run([*RSI, "show", str(run), "--inspect"], capture_output=True, text=True)
    assert inspected.returncode == 0 and "WARNING" in inspected.stderr


def test_a_promotion_flipped_by_hand_is_caught_and_nothing_is_promoted_from_a_forged_table(finished, tmp_path):
    run = _copy(finished, tmp_path)
    _edit(run, "INSERT INTO promotions(candidate_id, status, evidence, requested_at) VALUES (2, 'promoted', '{}', 0)")
    report = _report(run)
    assert not report.ok and any("promotion" in p and "no event recorded it" in p for p in report.problems)
    with pytest.raises(rsi.RunError, match="STATE DIFFERS"):
        rsi.open_run(run).check()
    # a forged score: the resumed run's gate refuses to promote anything from these tables
    run2 = _copy(finished, tmp_path / "b")
    _edit(run2, "UPDATE candidates SET score=1e9 WHERE id=(SELECT MAX(id) FROM candidates WHERE status='ok')")
    before = len(rsi.open_run(run2).store.promotions())
    rsi.Run.resume(run2, rsi.Overrides(budget=40)).execute()
    with rsi.open_run(run2) as results:
        assert len(results.store.promotions()) == before
        assert results.events("promotion.refused")
