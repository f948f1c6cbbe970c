"""The HTML report: one self-contained file, written at the end of every run and by `rsi report`."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys

import pytest

import rsi
from rsi.report.html import REPORT_FILE, failure_kind, report_html, write_report

SECTIONS = ("summary", "curves", "holdout", "lineage", "map", "stats", "failures", "flags", "promotions")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from conftest import write_problem

    base = tmp_path_factory.mktemp("report")
    problem = write_problem(base / "target", toml="[run]\nbudget = 30\nworkers = 1\n[evaluator]\ntimeout = 10\n")
    out = base / "run"
    summary = rsi.improve(problem, out=out, seed=3)
    return out, summary


def external_refs(text: str) -> list[str]:
    """Every src / href / url(...) / @import that would make the page fetch something."""
    refs = re.findall(r"""(?:src|href|action|data)\s*=\s*["']?\s*([^"'\s>]+)""", text, re.I)
    refs += re.findall(r"url\(\s*['\"]?([^'\")]+)", text, re.I) + re.findall(r"@import\s+['\"]?([^'\";]+)", text)
    return [r for r in refs if re.match(r"(https?:)?//|ftp:|ws:", r.strip(), re.I)]


def test_every_run_writes_its_report(finished):
    out, summary = finished
    path = out / REPORT_FILE
    assert path.is_file()
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not external_refs(text), external_refs(text)
    assert "http://" not in text and "https://" not in text  # not even as text
    for section in SECTIONS:
        assert f'<section id="{section}">' in text, section
    assert "<svg" in text and "Best score vs evaluations" in text and "Best score vs wall time" in text


def test_report_shows_the_best_and_its_diff(finished):
    out, summary = finished
    best = summary.best
    assert best is not None and best.id != 1, "the tiny run should improve on its seed"
    text = report_html(out)
    assert f"#{best.id}" in text and f"{best.score:.6g}" in text
    with rsi.open_run(out) as results:
        lineage = results.lineage(best.id)
        diff = results.diff(best.id)
    assert f'id="step-{best.id}"' in text and f'id="step-{lineage[0].id}"' in text
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added and all(html.escape(line) in text for line in added)
    assert best.proposer in text and (best.operator or "") in text
    assert "training score" in text and "held-out score" in text


def test_rsi_report_command(finished, tmp_path):
    out, _ = finished
    target = tmp_path / "r.html"
    done = subprocess.run([sys.executable, "-m", "rsi.cli", "report", str(out), "-o", str(target)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"report: {target}" in done.stdout and target.stat().st_size > 5000
    done = subprocess.run([sys.executable, "-m", "rsi.cli", "report", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such run folder" in done.stderr


def test_self_improvement_folder(finished, tmp_path):
    out, _ = finished
    folder = tmp_path / "si"
    shutil.copytree(out, folder)
    (folder / "selfimprove.json").write_text(json.dumps({"generations": 2, "budget": 30}))
    rows = [{"generation": 0, "incumbent": 1, "driver": None, "train": 0.4, "validation": 0.35, "test": None,
             "candidates": 1, "failed": 0, "best_train_this_generation": 0.4, "decision": None},
            {"generation": 1, "incumbent": 2, "driver": 1, "train": 0.5, "validation": 0.45, "test": None,
             "candidates": 6, "failed": 1, "best_train_this_generation": 0.5,
             "decision": {"challenger": 2, "outcome": "adopted", "effect": 0.1, "p_value": 0.01}}]
    (folder / "generations.json").write_text(json.dumps(rows))
    text = write_report(folder).read_text()
    assert '<section id="selfimprove">' in text and "Meta-utility per generation" in text
    assert "adopted" in text and "+0.100 (p=0.01)" in text


def test_failure_kinds_group_alike_reasons():
    tb = 'Traceback (most recent call last):\n  File "x.py", line 3, in f\nZeroDivisionError: division by zero'
    assert failure_kind("error", tb) == "ZeroDivisionError: division by zero"
    a = failure_kind("invalid", "proposal failed: swap_name: no applicable site after 8 tries (swap_name: x)")
    b = failure_kind("invalid", "proposal failed: swap_name: no applicable site after 9 tries (other)")
    assert a == b == "proposal failed: swap_name: no applicable site after N tries"
    assert failure_kind("timeout", None) == "timeout"


def test_published_references_are_drawn_on_the_best_score_charts(tmp_path):
    from conftest import write_problem

    from rsi.report.html import report_html

    problem = write_problem(tmp_path / "p", toml='[report]\nreferences = { "a published method" = -0.5 }\n')
    rsi.improve(problem, tmp_path / "r", budget=6, seed=1)
    html = report_html(tmp_path / "r")
    assert html.count("a published method") >= 2  # on both charts (against evaluations and wall time)
