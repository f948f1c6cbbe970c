"""The command line, as a user types it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rsi.storage import Store

RSI = [sys.executable, "-m", "rsi.cli"]


def rsi(*args, check=True):
    done = subprocess.run([*RSI, *map(str, args)], capture_output=True, text=True, timeout=180)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from conftest import write_problem

    base = tmp_path_factory.mktemp("cli")
    problem = write_problem(base / "target", toml="[run]\nbudget = 25\n")
    out = base / "run"
    done = rsi("run", problem, "--out", out, "--seed", "7")
    return out, done


def test_run_prints_result_diff_and_holdout(finished_run):
    out, done = finished_run
    assert "stopped: budget reached after 25 evaluations" in done.stdout
    assert "best: candidate" in done.stdout
    assert "held-out (best)" in done.stdout and "held-out (seed)" in done.stdout


def test_show_best_diff_lineage(finished_run):
    out, _ = finished_run
    store = Store.open(out)
    best = store.best()
    show = rsi("show", out).stdout
    assert "best score over evaluations" in show and f"#{best.id}" in show
    assert rsi("best", out).stdout == best.source
    if best.id != 1:
        diff = rsi("diff", out, best.id).stdout
        assert diff.startswith(f"# candidate {best.id}") and "@@" in diff
        lines = rsi("lineage", out, best.id).stdout.splitlines()
        assert lines[0].split()[0] == "1" and lines[-1].split()[0] == str(best.id)


def test_unknown_candidate_and_bad_folder_are_clear(finished_run, tmp_path):
    out, _ = finished_run
    done = rsi("diff", out, 99999, check=False)
    assert done.returncode == 2 and "no candidate 99999" in done.stderr
    done = rsi("show", tmp_path / "nothing", check=False)
    assert done.returncode == 2 and "no such run folder" in done.stderr


@pytest.mark.parametrize("command", ["run", "show", "best", "diff", "lineage", "stop"])
def test_every_command_has_help_with_an_example(command):
    done = rsi(command, "--help")
    assert "example" in done.stdout and "rsi " + command in done.stdout


def test_progress_log_off_a_terminal_has_a_line_per_new_best_and_failures_by_kind():
    import io

    from rich.console import Console

    from rsi.report.progress import ProgressDisplay
    from rsi.search import Snapshot

    out = io.StringIO()
    display = ProgressDisplay(Console(file=out, force_terminal=False, width=200), every=0.0)

    def snap(best_id, best, evaluations, **counts):
        return Snapshot(evaluations=evaluations, budget=100, best_score=best, best_id=best_id, evals_per_second=2.0,
                        failed_share=0.1, elapsed=5.0, time_left=40.0, counts={"ok": 9, **counts},
                        tokens=1234, cost=0.05)

    with display:
        display(snap(1, -4.0, 1))
        display(snap(7, -3.5, 10, error=1, invalid=2))
    text = out.getvalue()
    assert "new best: candidate 7, score -3.5" in text and "new best: candidate 1" not in text
    assert "failed 10% (error 1 invalid 2)" in text and "tokens 1,234 cost $0.05" in text
