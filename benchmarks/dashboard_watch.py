"""What watching a run with the dashboard costs the run, and how the dashboard keeps up with a big run.

    .venv/bin/python benchmarks/dashboard_watch.py [--problem examples/binpack] [--budget 200] [--seed 1]
        [--repeats 6] [--workers 2] [--sizes 2000,50000] [--scratch DIR] [--chromium /usr/bin/chromium]

Part 1, the run's speed: the same run (problem, seed, workers, evaluation budget: the same candidates
each time) repeated 2 x --repeats times, unwatched and watched alternately in ABBA order (U W W U U W ...)
so that a drift of the machine's load falls on both sides. One `rsi dashboard` process serves the
runs folder throughout (idle when no page is open); a watched run has a real headless chromium
(Playwright, Debian's /usr/bin/chromium, no browser download) on its live run page from the moment its
database exists to its end, refreshed by the page's server-sent events. Speed is evaluations per second
of run time (evaluations / (last evaluated_at - the run's created_at)); the table gives the median,
the spread (min to max) and watched / unwatched, both of medians and the median of the ABBA pairs'
ratios; also the run's own CPU seconds (the `rsi run` process tree), the dashboard's and the browser's
CPU seconds during the run, and how many refreshes the page made and how long the server took for one.

Part 2, the dashboard on big runs being written: for each of --sizes, a run of that many candidates
is written through the run store (rsi.storage.Store, audit trail included) from the rows of the
first run of part 1, cycled (their sources, diffs, metrics, statuses; random parents among earlier
candidates; scores drifting up), then a writer process keeps adding candidates at --write-rate per
second while chromium measures the run page's load time (--loads fresh loads) and the update latency:
the time from the commit of a new best candidate (a marker in its rationale) to the moment the open
page shows it, --markers times at random intervals.

The machine load (`uptime`) is printed before and after each part.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rsi.storage import EVALUATED_STATUSES, Store

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TICKS = os.sysconf("SC_CLK_TCK")
COPIED = ("inspiration_ids", "island", "proposer", "operator", "rationale", "source", "diff", "fingerprint", "status",
          "error", "score", "metrics", "holdout", "features", "duplicate_of", "eval_seed", "stdout", "stderr",
          "wall_seconds", "cpu_seconds", "flags", "tokens", "cost", "propose_seconds")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def rsi_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rsi.cli", *args]


# ----------------------------------------------------------------------------- process CPU


def _procs() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its reaped children)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / TICKS)
    return out


def tree_cpu(roots: set[int], exclude: set[int] = frozenset()) -> float:  # type: ignore[assignment]
    """CPU seconds of the processes under ``roots`` (themselves included), leaving out the trees under ``exclude``."""
    procs = _procs()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid in exclude or pid not in procs:
            continue
        seen.add(pid)
        total += procs[pid][1]
        todo += children.get(pid, [])
    return total


def browser_cpu(exclude: set[int]) -> float:
    """CPU seconds of this process's other children and their trees: Playwright's driver and the browser."""
    me = os.getpid()
    return tree_cpu({pid for pid, (ppid, _) in _procs().items() if ppid == me and pid not in exclude})


# ----------------------------------------------------------------------------- the dashboard and the browser


class Dashboard:
    """`rsi dashboard ROOT --port 0` in its own process."""

    def __init__(self, root: Path, log: Path):
        self.log = log.open("w")
        self.proc = subprocess.Popen(rsi_command("dashboard", str(root), "--port", "0"), stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=ROOT, env=child_env())
        deadline = time.time() + 60
        while time.time() < deadline:
            found = re.search(r"rsi dashboard: (http://\S+/)", log.read_text())
            if found:
                self.url = found.group(1)
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"rsi dashboard exited: {log.read_text()}")
            time.sleep(0.1)
        raise SystemExit("rsi dashboard did not start within 60 s")

    def cpu(self) -> float:
        return tree_cpu({self.proc.pid})

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_key(run_dir: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_dir.name)


REFRESHES = """() => performance.getEntriesByType('resource')
    .filter(e => e.name.includes('fragment=1')).map(e => e.duration / 1000)"""


# ----------------------------------------------------------------------------- part 1


def one_run(args: argparse.Namespace, out: Path, dash: Dashboard, browser: Any | None) -> dict[str, Any]:
    log = out.with_suffix(".log").open("w")
    began = time.time()
    proc = subprocess.Popen(rsi_command("run", str(args.problem), "--budget", str(args.budget), "--seed",
                                        str(args.seed), "--workers", str(args.workers), "--out", str(out)),
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=child_env())
    dash_cpu0 = dash.cpu()
    browser_cpu0 = browser_cpu(exclude={proc.pid, dash.proc.pid})
    page, load = None, None
    if browser is not None:
        while not (out / "rsi.db").exists() and proc.poll() is None:
            time.sleep(0.05)
        page = browser.new_page()
        t = time.time()
        page.goto(f"{dash.url}run/{run_key(out)}", wait_until="load")
        load = time.time() - t
    usage = None
    while usage is None:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            usage = rusage
        elif page is not None:
            page.wait_for_timeout(200)
        else:
            time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - began
    refreshes: list[float] = []
    if page is not None:
        refreshes = page.evaluate(REFRESHES)
        page.close()
    dash_cpu = dash.cpu() - dash_cpu0
    browser_used = browser_cpu(exclude={proc.pid, dash.proc.pid}) - browser_cpu0
    log.close()
    if proc.returncode != 0:
        raise SystemExit(f"rsi run failed ({proc.returncode}): see {out.with_suffix('.log')}")
    conn = sqlite3.connect(out / "rsi.db")
    marks = ",".join("?" for _ in EVALUATED_STATUSES)
    n, last = conn.execute(f"SELECT COUNT(*), MAX(evaluated_at) FROM candidates WHERE status IN ({marks})",
                           EVALUATED_STATUSES).fetchone()
    created = float(json.loads(conn.execute("SELECT value FROM meta WHERE key='created_at'").fetchone()[0]))
    best = conn.execute("SELECT MAX(score) FROM candidates WHERE status='ok'").fetchone()[0]
    conn.close()
    return {"evaluations": n, "seconds": last - created, "rate": n / (last - created), "wall": wall,
            "run_cpu": usage.ru_utime + usage.ru_stime, "dash_cpu": dash_cpu, "browser_cpu": browser_used,
            "load": load, "refreshes": refreshes, "best": best}


def part_speed(args: argparse.Namespace, scratch: Path, launch: Any) -> Path:
    runs = scratch / "runs"
    runs.mkdir(parents=True)
    dash = Dashboard(runs, scratch / "dashboard.log")
    print(f"== part 1: {args.problem} --budget {args.budget} --seed {args.seed} --workers {args.workers}, "
          f"{args.repeats} unwatched + {args.repeats} watched (ABBA order)")
    print(f"load before: {uptime()}")
    order = [("U", "W") if i % 2 == 0 else ("W", "U") for i in range(args.repeats)]
    results: dict[str, list[dict[str, Any]]] = {"U": [], "W": []}
    pairs = []
    browser, pw = launch()
    try:
        for i, pair in enumerate(order):
            rates = {}
            for arm in pair:
                out = runs / f"r{i}-{arm}"
                r = one_run(args, out, dash, browser if arm == "W" else None)
                results[arm].append(r)
                rates[arm] = r["rate"]
                extra = (f"  page load {r['load']:.2f} s, {len(r['refreshes'])} refreshes, dashboard CPU "
                         f"{r['dash_cpu']:.1f} s, browser CPU {r['browser_cpu']:.1f} s" if arm == "W" else "")
                print(f"  {'watched  ' if arm == 'W' else 'unwatched'} #{i}: {r['evaluations']} evaluations in "
                      f"{r['seconds']:.1f} s = {r['rate']:.2f}/s (wall {r['wall']:.1f} s, run CPU "
                      f"{r['run_cpu']:.1f} s, best {r['best']:.6g}){extra}  [{uptime().split('load average: ')[1]}]",
                      flush=True)
            pairs.append(rates["W"] / rates["U"])
    finally:
        browser.close()
        pw.stop()
        dash.close()
    print(f"load after: {uptime()}")

    def col(arm: str, key: str) -> list[float]:
        return [r[key] for r in results[arm]]

    def spread(values: list[float], digits: int = 2) -> str:
        return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f} to {max(values):.{digits}f})"

    print()
    print("| | unwatched | watched | watched / unwatched |")
    print("|---|---|---|---|")
    u, w = col("U", "rate"), col("W", "rate")
    print(f"| evaluations / s, median (min to max) | {spread(u)} | {spread(w)} | "
          f"{statistics.median(w) / statistics.median(u):.3f} |")
    print(f"| ABBA pairs: watched / unwatched, median (min to max) | | | {spread(pairs, 3)} |")
    uc, wc = col("U", "run_cpu"), col("W", "run_cpu")
    print(f"| the run's CPU s, median (min to max) | {spread(uc, 1)} | {spread(wc, 1)} | "
          f"{statistics.median(wc) / statistics.median(uc):.3f} |")
    print(f"| dashboard process CPU s during the run | {spread(col('U', 'dash_cpu'), 2)} | "
          f"{spread(col('W', 'dash_cpu'), 2)} | |")
    print(f"| browser CPU s during the run | | {spread(col('W', 'browser_cpu'), 1)} | |")
    fetches = [x for r in results["W"] for x in r["refreshes"]]
    per_run = [len(r["refreshes"]) / r["seconds"] * 60 for r in results["W"]]
    print(f"| run page: first load s | | {spread(col('W', 'load'))} | |")
    if fetches:
        print(f"| run page: refreshes a minute; one refresh's fetch s | | {spread(per_run, 1)}; "
              f"{spread(fetches)} | |")
    print()
    return runs / "r0-U"


# ----------------------------------------------------------------------------- part 2


def template_rows(db: Path) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM candidates ORDER BY id")]
    meta = {k: v for k, v in conn.execute("SELECT key, value FROM meta")}
    state = conn.execute("SELECT value FROM state WHERE key='loop'").fetchone()
    conn.close()
    return rows, meta, state[0] if state else None


def synthetic(template: dict[str, Any], cid: int, n: int, rnd: random.Random, when: float) -> dict[str, Any]:
    """A candidate like ``template`` with a random earlier parent; ok scores drift up with ``cid``."""
    fields = {k: template[k] for k in COPIED if template.get(k) is not None}
    for key in ("metrics", "holdout", "features", "inspiration_ids", "flags"):
        if isinstance(fields.get(key), str):
            fields[key] = json.loads(fields[key])
    fields.pop("duplicate_of", None)
    fields.pop("fingerprint", None)
    if fields.get("score") is not None:
        fields["score"] = fields["score"] + 3.0 * cid / max(n, 1)
    fields["parent_id"] = rnd.randint(1, cid - 1)
    fields["inspiration_ids"] = [rnd.randint(1, cid - 1) for _ in range(min(2, cid - 1))]
    fields["proposed_at"] = when
    if template.get("evaluated_at") is not None:
        fields["evaluated_at"] = when
    return fields


def build_big(run_dir: Path, n: int, template_db: Path) -> None:
    rows, meta, state = template_rows(template_db)
    store = Store.create(run_dir, {})
    with store.transaction():
        store.conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                               [(k, v) for k, v in meta.items() if k not in ("format", "format_version", "created_at")])
        store.conn.execute("UPDATE meta SET value=? WHERE key='created_at'", (str(time.time() - n * 0.1),))
    rnd = random.Random(n)
    start = time.time() - n * 0.1
    for cid in range(1, n + 1):
        if cid <= len(rows):  # the real run first, as it was
            fields = {k: rows[cid - 1][k] for k in (*COPIED, "parent_id")}
            for key in ("metrics", "holdout", "features", "inspiration_ids", "flags"):
                if isinstance(fields.get(key), str):
                    fields[key] = json.loads(fields[key])
            fields = {k: v for k, v in fields.items() if v is not None}
            fields["proposed_at"] = start + cid * 0.1
            if rows[cid - 1]["evaluated_at"] is not None:
                fields["evaluated_at"] = start + cid * 0.1
        else:
            fields = synthetic(rows[rnd.randrange(1, len(rows))], cid, n, rnd, start + cid * 0.1)
        store.insert_candidate(fields, json.loads(state) if state and cid == n else None)
    store.close()


def writer(run_dir: str, rate: float, n: int, stop: Any) -> None:
    """Add a candidate every 1/rate s through the store, like a run (until ``stop`` is set)."""
    rows, _, _ = template_rows(Path(run_dir) / "rsi.db")
    rows = rows[1:200]
    store = Store.open(Path(run_dir))
    rnd = random.Random(1)
    while not stop.wait(1.0 / rate):
        cid = store.next_id()
        fields = synthetic(rnd.choice(rows), cid, n, rnd, time.time())
        if fields.get("score") is not None:
            fields["score"] -= 10.0  # never a new best: only the markers are
        store.insert_candidate(fields)
    store.close()


def part_big(args: argparse.Namespace, scratch: Path, template_run: Path, launch: Any) -> None:
    big = scratch / "big"
    big.mkdir()
    print(f"== part 2: run page of big runs while a writer adds {args.write_rate:g} candidates/s "
          f"(template: {template_run})")
    print(f"load before: {uptime()}")
    table = []
    seed_row = template_rows(template_run / "rsi.db")[0][0]
    browser, pw = launch()
    try:
        for n in args.sizes:
            run_dir = big / f"n{n}"
            t = time.time()
            build_big(run_dir, n, template_run / "rsi.db")
            print(f"  built a run of {n:,} candidates through the store in {time.time() - t:.0f} s", flush=True)
            dash = Dashboard(run_dir, scratch / f"dashboard-{n}.log")
            stop = multiprocessing.get_context("fork").Event()
            proc = multiprocessing.get_context("fork").Process(target=writer, args=(str(run_dir), args.write_rate,
                                                                                    n, stop))
            proc.start()
            try:
                url = f"{dash.url}run/{run_key(run_dir)}"
                cpu0, began = dash.cpu(), time.time()
                page = browser.new_page()
                loads = []
                for _ in range(args.loads):
                    t = time.time()
                    page.goto(url, wait_until="load")
                    loads.append(time.time() - t)
                    page.wait_for_timeout(500)
                rnd = random.Random(2)
                latencies = []
                store = Store.open(run_dir)
                for k in range(args.markers):
                    page.wait_for_timeout(rnd.uniform(2000, 8000))
                    best = store.best()
                    assert best is not None
                    marker = f"watch-marker-{n}-{k}"
                    fields = synthetic(seed_row, store.next_id(), n, rnd, time.time())
                    fields.update(status="ok", score=(best.score or 0) + 1.0, rationale=marker, parent_id=best.id)
                    store.insert_candidate(fields)
                    t = time.time()
                    page.wait_for_function("m => document.querySelector('main').textContent.includes(m)", arg=marker,
                                           timeout=300_000, polling=50)
                    latencies.append(time.time() - t)
                store.close()
                refreshes = page.evaluate(REFRESHES)
                page.close()
                dash_share = (dash.cpu() - cpu0) / (time.time() - began)
            finally:
                stop.set()
                proc.join(timeout=30)
                dash.close()
            table.append((n, loads, latencies, refreshes, dash_share))
            print(f"  {n:,}: loads {', '.join(f'{x:.2f}' for x in loads)} s; update latency "
                  f"{', '.join(f'{x:.2f}' for x in latencies)} s", flush=True)
    finally:
        browser.close()
        pw.stop()
    print(f"load after: {uptime()}")
    print()
    print("| candidates | run page load s, median (min to max) | update latency s, median (min to max) | "
          "one refresh's fetch s, median (min to max) | dashboard CPU s per s watched |")
    print("|---|---|---|---|---|")
    for n, loads, latencies, refreshes, dash_share in table:
        def spread(v: list[float]) -> str:
            return f"{statistics.median(v):.2f} ({min(v):.2f} to {max(v):.2f})" if v else "—"
        print(f"| {n:,} | {spread(loads)} | {spread(latencies)} | {spread(refreshes)} | {dash_share:.2f} |")
    print()


# ----------------------------------------------------------------------------- main


def launcher(chromium: str) -> Any:
    def launch() -> tuple[Any, Any]:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        return pw.chromium.launch(executable_path=chromium, headless=True, args=FLAGS), pw
    return launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", type=Path, default=ROOT / "examples" / "binpack")
    parser.add_argument("--budget", type=int, default=200, help="evaluations per run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=6, help="runs per arm (an even number balances the ABBA order)")
    parser.add_argument("--sizes", default="2000,50000", help="candidates of the big runs (part 2); '' skips it")
    parser.add_argument("--write-rate", type=float, default=10.0, help="candidates a second added during part 2")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--markers", type=int, default=5)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--scratch", type=Path, help="keep the runs here (default: a temporary folder, removed)")
    parser.add_argument("--template", type=Path, help="skip part 1: build part 2's big runs from this finished run "
                                                      "folder (e.g. one that part 1 kept with --scratch)")
    args = parser.parse_args()
    args.problem = args.problem.resolve()
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not Path(args.chromium).exists():
        raise SystemExit(f"no chromium at {args.chromium} (apt-get install chromium, or pass --chromium)")
    scratch = args.scratch.resolve() if args.scratch else Path(tempfile.mkdtemp(prefix="rsi-watch-"))
    if args.scratch and scratch.exists() and any(scratch.iterdir()):
        raise SystemExit(f"{scratch} is not empty; pass an empty or new --scratch folder")
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs; python {sys.version.split()[0]}; chromium {args.chromium}; scratch {scratch}")
    launch = launcher(args.chromium)
    try:
        if args.template is not None:
            template = args.template.resolve()
            if not (template / "rsi.db").is_file():
                raise SystemExit(f"--template {template}: no rsi.db there; pass a finished run folder")
        else:
            template = part_speed(args, scratch, launch)
        if args.sizes:
            part_big(args, scratch, template, launch)
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
