"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright (no browser download).

Without chromium (or the playwright package) these tests skip, unless RSI_REQUIRE_BROWSER=1 (set by
.ci/run, which installs chromium): then they fail. Screenshots of the main pages are saved in the
test's tmp folder (and in $RSI_SCREENSHOTS if set).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import rsi
from rsi.errors import RsiError
from rsi.report.dashboard import DashboardServer

CHROMIUM = os.environ.get("RSI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.timeout(600)


def _unavailable() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -c requirements.lock -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run whose best waits for approval (manual adoption)."""
    from conftest import write_problem

    base = tmp_path_factory.mktemp("dash")
    problem = write_problem(base / "target", toml="[run]\nbudget = 30\nworkers = 1\n[evaluator]\ntimeout = 10\n"
                                                   "[oversight]\nadoption = \"manual\"\n")
    out = base / "runs" / "tiny"
    summary = rsi.improve(problem, out=out, seed=3)
    with rsi.open_run(out) as results:
        pending = [p["candidate_id"] for p in results.store.promotions("pending")]
    assert summary.best is not None and summary.best.id != 1 and pending == [summary.best.id]
    return out, summary.best.id


@pytest.fixture(scope="module")
def server(finished):
    out, _ = finished
    with DashboardServer([out.parent], port=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser():
    why = _unavailable()
    if why:
        if os.environ.get("RSI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RSI_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shot(page, screens: Path, name: str) -> Path:
    path = screens / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    extra = os.environ.get("RSI_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def test_runs_list_curve_and_lineage(page, server, finished, screens):
    out, best_id = finished
    page.goto(server.url)
    link = page.locator("#runs a", has_text="tiny")
    link.wait_for()
    shot(page, screens, "runs")
    link.click()
    page.wait_for_url("**/run/tiny")
    chart = page.locator("#curves svg.chart").first
    chart.wait_for()
    assert "Best score vs evaluations" in chart.get_attribute("aria-label")
    assert page.locator("#curves path.series").count() >= 2  # best so far, vs evaluations and vs wall time
    with rsi.open_run(out) as results:
        lineage = results.lineage(best_id)
    steps = page.locator("#lineage li.step")
    assert steps.count() == len(lineage)
    assert page.locator(f"#step-{best_id}").is_visible()
    assert page.locator("#queue li.pending").count() == 1
    shot(page, screens, "run")


def test_candidate_page_shows_its_diff(page, server, finished, screens):
    out, best_id = finished
    page.goto(server.url + "run/tiny")
    page.locator(f"#step-{best_id} .cid a").click()
    page.wait_for_url(f"**/run/tiny/candidate/{best_id}")
    diff = page.locator("#diff pre.diff")
    diff.wait_for()
    with rsi.open_run(out) as results:
        expected = results.diff(best_id)
    added = [line for line in expected.splitlines() if line.startswith("+") and not line.startswith("+++")]
    text = diff.inner_text()
    assert added and all(line in text for line in added)
    assert page.locator("#diff .add").count() == len(added)
    assert page.locator("#gate").is_visible() and "pending" in page.locator("#gate").inner_text()
    shot(page, screens, "candidate")


def test_approval_needs_the_token_and_reaches_the_audit_trail(page, server, finished, screens):
    out, best_id = finished
    page.goto(server.url + "run/tiny")
    approve = page.locator(f"#queue button.approve[data-action$='/approve/{best_id}']")
    approve.click()  # no token in the field
    expect(page.locator("#msg")).to_contain_text("refused")
    with rsi.open_run(out) as results:
        assert [p["status"] for p in results.store.promotions()] == ["pending"]

    page.fill("#token", server.token)
    page.fill(f"#note-{best_id}", "checked in the browser")
    page.locator(f"#queue button.approve[data-action$='/approve/{best_id}']").click()
    expect(page.locator("#msg")).to_have_text(re.compile("^approved"))
    page.locator("#queue .empty").wait_for()  # the queue emptied without a reload
    with rsi.open_run(out) as results:
        assert [p["status"] for p in results.store.promotions()] == ["promoted"]
        approved = results.events("approval.approved")
        assert approved and approved[-1].payload["note"] == "checked in the browser"
    assert (out / "promoted.py").is_file()

    page.goto(server.url + "run/tiny/audit")
    assert "audit trail intact" in page.locator("#verify-chain").inner_text()
    assert "state agrees with the trail" in page.locator("#verify-state").inner_text()
    first = page.locator("table.audit tbody tr").first
    assert "candidate.promoted" in first.inner_text()
    assert page.locator("table.audit", has_text="approval.approved").locator("tr",
                                                                            has_text="checked in the browser").count()
    shot(page, screens, "audit")


def test_live_update_without_reload(page, server, finished, screens):
    out, _ = finished
    page.goto(server.url + "run/tiny")
    page.locator("#controls button").wait_for()
    page.evaluate("window.__loaded_once = 1")
    page.evaluate("document.getElementById('lineage').dataset.kept = 'yes'")
    expect(page.locator("#live")).to_have_text("live")  # the event stream is open
    (out / "STOP").write_text("test\n")
    try:
        page.locator("#controls", has_text="a stop was requested").wait_for(timeout=20_000)
        assert page.evaluate("window.__loaded_once") == 1
        assert page.locator("#live").inner_text().startswith("live · updated")
        # only the section that changed was replaced: the lineage is still the element it was
        assert page.evaluate("document.getElementById('lineage').dataset.kept") == "yes"
    finally:
        (out / "STOP").unlink(missing_ok=True)


FETCHES = "performance.getEntriesByType('resource').filter(e => e.name.includes('fragment=1')).length"
SET_HIDDEN = """hidden => { Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
    document.dispatchEvent(new Event('visibilitychange')); }"""


def test_a_hidden_tab_is_not_refreshed_until_shown(page, server, finished):
    out, _ = finished
    page.goto(server.url + "run/tiny")
    page.locator("#controls button").wait_for()
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate(SET_HIDDEN, True)
    before = page.evaluate(FETCHES)
    (out / "STOP").write_text("test\n")
    try:
        page.wait_for_timeout(5000)  # the event stream says "change" within about a second
        assert page.evaluate(FETCHES) == before
        assert page.locator("#controls button").count() == 1  # still the old content
        page.evaluate(SET_HIDDEN, False)
        page.locator("#controls", has_text="a stop was requested").wait_for(timeout=20_000)
        assert page.evaluate(FETCHES) == before + 1
    finally:
        (out / "STOP").unlink(missing_ok=True)


def test_stop_button_writes_the_stop_file(page, server, finished):
    out, _ = finished
    page.goto(server.url + f"run/tiny#token={server.token}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#controls button").click()
    expect(page.locator("#msg")).to_have_text(re.compile("^asked"))
    try:
        assert (out / "STOP").read_text().startswith("stop requested from the dashboard")
    finally:
        (out / "STOP").unlink(missing_ok=True)


def _post(url: str, headers: dict[str, str], body: bytes = b"{}") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_requests_without_token_or_from_elsewhere_are_refused(server, finished):
    out, _ = finished
    url = server.url + "run/tiny/stop"
    origin = server.url.rstrip("/")
    json_type = {"Content-Type": "application/json"}
    assert _post(url, {**json_type, "Origin": origin})[0] == 403  # no token
    assert _post(url, {**json_type, "Origin": origin, "X-RSI-Token": "wrong"})[0] == 403
    assert _post(url, {**json_type, "Origin": "http://evil.example", "X-RSI-Token": server.token})[0] == 403
    assert _post(url, {**json_type, "X-RSI-Token": server.token})[0] == 403  # no Origin: not from the page
    assert _post(url, {"Content-Type": "text/plain", "Origin": origin, "X-RSI-Token": server.token})[0] == 415
    assert not (out / "STOP").exists()
    rebinding = urllib.request.Request(server.url, headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebinding, timeout=10)
    assert refused.value.code == 403
    with urllib.request.urlopen(server.url, timeout=10) as response:  # reading needs no token
        assert response.status == 200
    status, reply = _post(url, {**json_type, "Origin": origin, "X-RSI-Token": server.token})
    assert status == 200 and reply["ok"]
    (out / "STOP").unlink()


def test_a_port_in_use_is_a_clear_error(server):
    with pytest.raises(RsiError, match=f"port {server.port} .* already in use"):
        DashboardServer([], port=server.port)
