"""The dashboard's app: what each page shows and what each action does (``rsi.report.dashboard``
serves it over HTTP; its docstring says what the pages hold and how the actions are guarded).

Pages: ``/`` the runs list, ``/run/KEY`` a run, ``/run/KEY/candidate/ID`` a candidate,
``/run/KEY/audit`` the audit trail (``?kind=`` filters it; its verify status is cached per audit
head). A page asked with ``?fragment=1`` is its body alone: the page's script fetches it when the
event stream says the run changed, and redraws only the sections that differ. Actions (POST):
``/run/KEY/stop``, ``/run/KEY/approve/ID``, ``/run/KEY/reject/ID``, with an optional note.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from ..errors import RsiError
from ..oversight import adoption
from ..oversight.audit import AuditEvent
from ..program import unified_diff
from ..results import Results, open_run
from ..storage import DB_NAME
from . import html as report
from .live import LiveView

AUDIT_EVENTS_SHOWN = 300


def find_runs(paths: Iterable[Path]) -> list[Path]:
    """Run folders among ``paths``: each one that holds rsi.db, and the run folders directly inside the others."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if (path / DB_NAME).is_file():
            found.append(path.resolve())
        elif path.is_dir():
            found += sorted(p.resolve() for p in path.iterdir() if (p / DB_NAME).is_file())
    return list(dict.fromkeys(found))


def audit_head(run_dir: Path) -> tuple[int, bool]:
    """(last audit event number, STOP file present): what changes whenever the run writes."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(run_dir / DB_NAME))}?mode=ro", uri=True, timeout=5)
        try:
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        seq = -1
    return int(seq), (run_dir / "STOP").exists()


def flag_items(flags: Iterable[dict[str, Any]]) -> str:
    """Review flags as HTML list items: code, line, message."""
    return "".join(f"<li><code>{escape(str(f.get('code')))}</code> line {escape(str(f.get('line')))}: "
                   f"{escape(str(f.get('message')))}</li>" for f in flags)


@dataclass
class Reply:
    status: int
    body: str
    content_type: str = "text/html; charset=utf-8"


class ActionError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Dashboard:
    """The app: pages and actions over the run folders found in ``roots`` (looked for again on every
    runs list, so runs started later show up)."""

    def __init__(self, roots: list[Path], token: str | None = None):
        self.roots = roots or [Path("runs")]
        self.token = token or secrets.token_urlsafe(18)
        self.keys: dict[Path, str] = {}
        self.allowed_hosts: set[str] = set()
        self._verify_cache: dict[Path, tuple[int, tuple[str, bool, str, bool]]] = {}
        self._views: dict[Path, LiveView] = {}
        self._lock = threading.Lock()
        self.refresh_runs()

    # --- runs ---------------------------------------------------------------------------
    def refresh_runs(self) -> dict[str, Path]:
        with self._lock:
            for path in find_runs(self.roots):
                if path not in self.keys:
                    key = re.sub(r"[^A-Za-z0-9_.-]", "_", path.name) or "run"
                    taken = set(self.keys.values())
                    n = 2
                    base = key
                    while key in taken:
                        key, n = f"{base}-{n}", n + 1
                    self.keys[path] = key
            return {key: path for path, key in self.keys.items()}

    def run_path(self, key: str) -> Path:
        runs = {k: p for p, k in self.keys.items()}
        if key not in runs:
            runs = self.refresh_runs()
        if key not in runs:
            raise ActionError(404, f"no run {key!r} here")
        return runs[key]

    # --- pages --------------------------------------------------------------------------
    def page(self, path: str, query: dict[str, list[str]]) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        fragment = "fragment" in query
        if not parts:
            title, body = "runs", self.runs_page()
        elif parts[0] == "run" and len(parts) >= 2:
            key = parts[1]
            run_dir = self.run_path(key)
            with open_run(run_dir) as results:
                if len(parts) == 2:
                    title, body = key, self.run_page(key, results)
                elif len(parts) == 4 and parts[2] == "candidate" and parts[3].isdigit():
                    title, body = f"{key} #{parts[3]}", self.candidate_page(key, results, int(parts[3]))
                elif len(parts) == 3 and parts[2] == "audit":
                    title, body = f"{key} audit", self.audit_page(key, results, query.get("kind", []))
                else:
                    raise ActionError(404, f"no page {path}")
        else:
            raise ActionError(404, f"no page {path}")
        return Reply(200, body if fragment else self.layout(title, body))

    def layout(self, title: str, body: str) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>rsi dashboard: {escape(title)}</title><style>{report.CSS}{CSS}</style></head><body>"
                '<header><h1><a href="/">rsi dashboard</a> <span class="crumb">' + escape(title) + "</span></h1>"
                '<div class="bar"><label>action token <input id="token" type="password" size="26" '
                'autocomplete="off" placeholder="printed by rsi dashboard"></label> '
                '<span id="live" class="live">live</span> <span id="msg" role="status"></span></div></header>'
                f"<main>{body}</main><script>{SCRIPT}</script></body></html>\n")

    def link_for(self, key: str) -> report.Link:
        def link(cid: int) -> str:
            return f'<a href="/run/{quote(key)}/candidate/{cid}">#{cid}</a>'
        return link

    def runs_page(self) -> str:
        runs = self.refresh_runs()
        rows = []
        for key, path in sorted(runs.items(), key=lambda kv: kv[1].stat().st_mtime if kv[1].exists() else 0,
                                reverse=True):
            try:
                with open_run(path) as results:
                    counts = results.counts()
                    best = results.best()
                    pending = len(results.store.promotions("pending"))
                    last = results.store.conn.execute("SELECT MAX(ts) FROM audit").fetchone()[0]
                kind = "self-improvement" if (path / report.SELFIMPROVE_FILE).is_file() else "run"
                evaluated = sum(counts.get(s, 0) for s in ("ok", "error", "timeout"))
                rows.append([f'<a href="/run/{quote(key)}">{escape(key)}</a>', kind, f"{evaluated:,}",
                             "—" if best is None else f"#{best.id} {best.score:.6g}",
                             f'<b class="st-pending">{pending}</b>' if pending else "0", escape(last or "—"),
                             escape(str(path))])
            except RsiError as exc:
                rows.append([escape(key), "unreadable", "", "", "", "", escape(str(exc))])
        table = report.html_table(["run", "kind", "evaluated", "best", "waiting for approval", "last event", "folder"],
                              rows, "runs") if rows else '<p class="empty">no run folder found</p>'
        where = ", ".join(escape(str(r)) for r in self.roots)
        return f'<section id="runs"><h2>Runs ({len(rows)})</h2><p class="note">from {where}</p>{table}</section>'

    def live_view(self, run_dir: Path) -> LiveView:
        """The run's view kept between refreshes (each refresh reads only the candidates written since)."""
        with self._lock:
            if run_dir not in self._views:
                self._views[run_dir] = LiveView(run_dir)
            return self._views[run_dir]

    def run_page(self, key: str, results: Results) -> str:
        view = self.live_view(results.run_dir).update(results)
        link = self.link_for(key)
        stop_file = results.run_dir / "STOP"
        controls = (f'<section id="controls"><h2>Run</h2><p><a href="/run/{quote(key)}/audit">audit trail</a> · '
                    f'report file: {escape(str(results.run_dir / report.REPORT_FILE))}</p>'
                    + ('<p class="note">a self-improvement run: stop it with Ctrl-C where it runs</p>'
                       if view.selfimprove is not None else
                       '<p class="st-pending">a stop was requested; the loop stops within 2 seconds</p>'
                       if stop_file.exists() else
                       f'<button data-action="/run/{quote(key)}/stop" data-confirm="Stop this run? '
                       f'(it stays resumable)">Stop the run</button>')
                    + "</section>")
        return controls + self.queue(key, results, link) + report.sections(view, link)

    def queue(self, key: str, results: Results, link: report.Link) -> str:
        pending = results.store.promotions("pending")
        if not pending:
            return ('<section id="queue"><h2>Approval queue</h2><p class="empty">nothing waits for approval</p>'
                    "</section>")
        items = []
        for p in pending:
            cid = p["candidate_id"]
            ev = p["evidence"]
            flags = flag_items(ev.get("flags", []))
            items.append(f'<li class="pending" data-candidate="{cid}">{link(cid)} against '
                         f'{link(ev["incumbent"]) if isinstance(ev.get("incumbent"), int) else "—"}: '
                         f'{escape(str(ev.get("summary", "")))} (policy {escape(str(ev.get("policy")))})'
                         f'<ul>{flags}</ul>' + self.decide_buttons(key, cid) + "</li>")
        return f'<section id="queue"><h2>Approval queue ({len(pending)})</h2><ul>{"".join(items)}</ul></section>'

    @staticmethod
    def decide_buttons(key: str, cid: int) -> str:
        base = f"/run/{quote(key)}"
        return (f'<div class="decide"><input class="note" id="note-{cid}" placeholder="note (kept in the audit trail)" '
                f'size="40"> <button class="approve" data-action="{base}/approve/{cid}" data-note="note-{cid}">'
                f'Approve #{cid}</button> <button class="reject" data-action="{base}/reject/{cid}" '
                f'data-note="note-{cid}">Reject #{cid}</button></div>')

    def candidate_page(self, key: str, results: Results, cid: int) -> str:
        link = self.link_for(key)
        try:
            c = results.get(cid)
        except RsiError as exc:
            raise ActionError(404, str(exc)) from None
        facts = [("status", escape(c.status)), ("score", report.num(c.score)),
                 ("parent", link(c.parent_id) if c.parent_id else "— (the seed)"),
                 ("inspirations", ", ".join(link(i) for i in c.inspiration_ids) or "—"),
                 ("proposer", escape(c.proposer) + (f" / {escape(c.operator)}" if c.operator else "")),
                 ("island", str(c.island)), ("rationale", escape(c.rationale or "—")),
                 ("evaluation", f"{report.num(c.wall_seconds, 3)} s wall, {report.num(c.cpu_seconds, 3)} s CPU, "
                                f"seed {c.eval_seed}"),
                 ("proposal", f"{report.num(c.propose_seconds, 3)} s" + (f", {c.tokens:,} tokens" if c.tokens else "")
                  + (f", cost {c.cost:.4f}" if c.cost else ""))]
        if c.duplicate_of:
            facts.append(("duplicate of", link(c.duplicate_of)))
        gap = adoption.train_holdout_gap(c)
        if gap is not None:
            facts.append(("train / held-out gap", f"{gap:+.1%}"))
        out = [f'<section id="candidate"><h2>Candidate #{c.id}</h2><table class="kv">'
               + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in facts) + "</table>"]
        if c.error:
            out.append(f'<h3>error</h3><pre class="error">{escape(c.error)}</pre>')
        out.append("</section>")
        sections: list[tuple[str, dict[str, Any] | None]] = [("Metrics", c.metrics), ("Held-out", c.holdout),
                                                            ("Features", c.features)]
        for title, values in sections:
            if values:
                rows = [[escape(k), report.num(v) if isinstance(v, float | int) else escape(str(v))]
                        for k, v in sorted(values.items())]
                out.append(f'<section id="{title.lower()}"><h2>{title}</h2>{report.html_table(["name", "value"], rows)}'
                           "</section>")
        if c.flags:
            out.append(f'<section id="flags"><h2>Review flags</h2><ul>{flag_items(c.flags)}</ul></section>')
        promotions = [p for p in results.store.promotions() if p["candidate_id"] == c.id]
        if promotions:
            gate = report.html_table(report.PROMOTION_HEADER, report.promotion_rows(promotions, link), "promotions")
            evidence = "".join(f'<details><summary>evidence of decision {p["id"]}</summary><pre>'
                               f'{escape(json.dumps(p["evidence"], indent=1))}</pre></details>' for p in promotions)
            buttons = "".join(self.decide_buttons(key, c.id) for p in promotions if p["status"] == "pending")
            out.append(f'<section id="gate"><h2>Adoption gate</h2>{gate}{evidence}{buttons}</section>')
        if c.source is not None and c.parent_id is not None:
            parent = results.get(c.parent_id)
            out.append(f'<section id="diff"><h2>Diff against its parent {link(parent.id)}</h2>'
                       + report.diff_html(unified_diff(parent.source or "", c.source, f"candidate-{c.id}.py"),
                                          limit=200_000) + "</section>")
            if c.parent_id != 1:
                seed = results.get(1)
                out.append('<section id="diff-seed"><details><summary>diff against the seed</summary>'
                           + report.diff_html(unified_diff(seed.source or "", c.source, f"candidate-{c.id}.py"),
                                              limit=200_000) + "</details></section>")
        extra = [("source", c.source), ("stdout", c.stdout), ("stderr", c.stderr), ("prompt", c.prompt),
                 ("reply", c.reply)]
        shown = "".join(f"<details><summary>{name}</summary><pre>{escape(text)}</pre></details>"
                        for name, text in extra if text)
        if shown:
            out.append(f'<section id="text"><h2>Program and output</h2>{shown}</section>')
        children = results.store.conn.execute(
            "SELECT id, status, score FROM candidates WHERE parent_id=? ORDER BY id LIMIT 100", (c.id,)).fetchall()
        if children:
            shown_children = ", ".join(f"{link(i)} ({escape(s)}{'' if sc is None else f' {sc:.6g}'})"
                                       for i, s, sc in children)
            out.append(f'<section id="children"><h2>Children</h2><p>{shown_children}</p></section>')
        return "".join(out)

    def verify(self, results: Results) -> tuple[str, bool, str, bool]:
        """The audit trail's and the tables' verify status, cached per audit head."""
        seq = results.store.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0]
        cached = self._verify_cache.get(results.run_dir)
        if cached is None or cached[0] != int(seq):
            chain = results.verify_audit()
            state = results.verify_state()
            cached = (int(seq), (chain.summary(), chain.ok, state.summary(), state.ok))
            self._verify_cache[results.run_dir] = cached
        return cached[1]

    def audit_page(self, key: str, results: Results, kinds: list[str]) -> str:
        chain, chain_ok, state, state_ok = self.verify(results)
        status = (f'<p id="verify-chain" class="{"ok" if chain_ok else "bad"}">{escape(chain)}</p>'
                  f'<pre id="verify-state" class="{"ok" if state_ok else "bad"}">{escape(state)}</pre>')
        events: list[AuditEvent] = results.events(*kinds)
        shown = events[-AUDIT_EVENTS_SHOWN:][::-1]
        link = self.link_for(key)
        rows = []
        for e in shown:
            payload = {k: v for k, v in e.payload.items() if k != "row"}
            text = json.dumps(payload, sort_keys=True, default=str)
            cid = payload.get("id")
            rows.append([str(e.seq), escape(e.ts), escape(e.actor), f'<code class="kind">{escape(e.kind)}</code>',
                         link(cid) if isinstance(cid, int) else "—", f"<code>{escape(text[:240])}</code>"])
        kinds_all = [k for (k,) in results.store.conn.execute("SELECT DISTINCT kind FROM audit ORDER BY kind")]
        filters = " ".join(f'<a href="/run/{quote(key)}/audit?kind={quote(k)}">{escape(k)}</a>' for k in kinds_all)
        return (f'<section id="verify"><h2>Audit trail: verify</h2>{status}</section>'
                f'<section id="audit"><h2>Events (the last {len(shown)} of {len(events)}, newest first)</h2>'
                f'<p class="note">only: {filters} · <a href="/run/{quote(key)}/audit">all</a> · '
                f'<a href="/run/{quote(key)}">back to the run</a></p>'
                + report.html_table(["seq", "time", "actor", "kind", "candidate", "payload"], rows, "audit")
                + "</section>")

    # --- actions ------------------------------------------------------------------------
    def act(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if len(parts) < 3 or parts[0] != "run":
            raise ActionError(404, f"no action {path}")
        run_dir = self.run_path(parts[1])
        action = parts[2]
        note = body.get("note") or None
        if note is not None and not isinstance(note, str):
            raise ActionError(400, "note must be text")
        if action == "stop" and len(parts) == 3:
            from ..run import STOP_FILE

            if (run_dir / report.SELFIMPROVE_FILE).is_file():
                raise ActionError(409, "a self-improvement run does not watch the STOP file; stop it with Ctrl-C")

            (run_dir / STOP_FILE).write_text("stop requested from the dashboard\n")
            return {"ok": True, "message": f"asked {parts[1]} to stop; it stops within 2 seconds and stays resumable"}
        if action in ("approve", "reject") and len(parts) == 4 and parts[3].isdigit():
            cid = int(parts[3])
            try:
                if action == "approve":
                    adoption.approve(run_dir, cid, note)
                    return {"ok": True, "message": f"approved: candidate {cid} promoted"}
                adoption.reject(run_dir, cid, note)
                return {"ok": True, "message": f"rejected: candidate {cid}"}
            except RsiError as exc:
                raise ActionError(409, str(exc)) from None
        raise ActionError(404, f"no action {path}")

    # --- live updates -------------------------------------------------------------------
    def watched(self, page: str) -> list[Path]:
        parts = [unquote(p) for p in page.strip("/").split("/") if p]
        if len(parts) >= 2 and parts[0] == "run":
            return [self.run_path(parts[1])]
        return list(self.refresh_runs().values())

    def signature(self, runs: list[Path]) -> str:
        return json.dumps([audit_head(r) for r in runs] + [len(self.keys)])


CSS = """
header h1 a{color:#fff;text-decoration:none}.crumb{color:#b8c4e8;font-weight:400;margin-left:8px}
.bar{margin-top:4px;font-size:13px}.bar input{font:12px monospace}.live{color:#9fd39f;margin-left:10px}
#msg{margin-left:12px;font-weight:600}#msg.err{color:#ffb4b4}#msg.ok{color:#b4ffb4}
button{font:13px system-ui;padding:3px 10px;border-radius:4px;border:1px solid #888;background:#fff;cursor:pointer}
button.approve{border-color:#116329;color:#116329}button.reject{border-color:#82071e;color:#82071e}
li.pending{margin:6px 0}.decide{margin:4px 0}.ok{color:#116329}.bad{color:#82071e;font-weight:600}
pre.error{background:#fff4f4;border:1px solid #f0caca;padding:6px;overflow:auto;max-height:300px;font-size:12px}
table.audit code{word-break:break-all}table.audit td:nth-child(-n+4){white-space:nowrap}
"""

SCRIPT = r"""
(function () {
  const REFRESH_SHARE = 25;  // refresh gap: at least 25 times what the last refresh took
  const store = window.sessionStorage;
  if (location.hash.startsWith('#token=')) {
    store.setItem('rsiToken', decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const field = document.getElementById('token');
  field.value = store.getItem('rsiToken') || '';
  field.addEventListener('input', () => store.setItem('rsiToken', field.value.trim()));
  const msg = document.getElementById('msg');
  function say(text, ok) { msg.textContent = text; msg.className = ok ? 'ok' : 'err'; }
  let busy = false, again = false, missed = false, last = 0, gap = 5000;
  // resolves once the browser has laid out and painted what changed (or after 1 s, in a hidden tab)
  const painted = () => new Promise(done => {
    requestAnimationFrame(() => setTimeout(done, 0)); setTimeout(done, 1000); });
  const main = document.querySelector('main');
  // the HTML each section had when it was last drawn: a refresh replaces only the sections that changed
  const drawn = new Map([...main.children].map(e => [e.id, e.outerHTML]));
  function draw(text) {
    const t = document.createElement('template');
    t.innerHTML = text;
    const fresh = [...t.content.children], now = [...main.children];
    const same = fresh.length === now.length && fresh.every((e, i) => e.id && e.id === now[i].id);
    if (!same) {
      main.replaceChildren(t.content);
      drawn.clear();
      [...main.children].forEach(e => drawn.set(e.id, e.outerHTML));
      return [...main.children];
    }
    const changed = [];
    fresh.forEach((e, i) => {
      const html = e.outerHTML;
      if (drawn.get(e.id) !== html) { now[i].replaceWith(e); drawn.set(e.id, html); changed.push(e); }
    });
    return changed;
  }
  async function refresh() {
    if (document.hidden) { missed = true; return; }  // a hidden tab is not refreshed; it catches up when shown
    if (busy) { again = true; return; }
    busy = true;
    const began = performance.now();
    try {
      const open = new Set([...document.querySelectorAll('main details[open]')].map(d => d.closest('[id]')?.id));
      const notes = {};
      document.querySelectorAll('main input.note').forEach(i => { notes[i.id] = i.value; });
      const sep = location.search ? '&' : '?';
      const r = await fetch(location.pathname + location.search + sep + 'fragment=1', {cache: 'no-store'});
      if (r.ok) {
        draw(await r.text()).forEach(section => section.querySelectorAll('details').forEach(d => {
          const id = d.closest('[id]')?.id; if (id && open.has(id)) d.open = true; }));
        Object.entries(notes).forEach(([id, v]) => { const i = document.getElementById(id); if (i) i.value = v; });
        document.getElementById('live').textContent = 'live · updated ' + new Date().toLocaleTimeString();
      }
    } finally {
      await painted();
      busy = false; last = Date.now();
      // a refresh (making the page, sending, parsing and drawing it) takes at most 1/25 of the time, and comes
      // at most every 5 s, so that watching costs the run little (the browser's work is several times what
      // this page measures: layout and painting happen in other processes); a big run's page, or any page on
      // a busy machine, is refreshed less often (every 5 to 30 s)
      gap = Math.min(30000, Math.max(5000, REFRESH_SHARE * (performance.now() - began)));
      if (again) { again = false; setTimeout(refresh, gap); }
    }
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && missed) { missed = false; refresh(); }
  });
  window.rsiRefresh = refresh;
  document.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
    const noteField = b.dataset.note ? document.getElementById(b.dataset.note) : null;
    const body = JSON.stringify({note: noteField ? noteField.value : null});
    try {
      const r = await fetch(b.dataset.action, {method: 'POST', body: body, headers: {
        'Content-Type': 'application/json', 'X-RSI-Token': store.getItem('rsiToken') || ''}});
      const j = await r.json().catch(() => ({message: r.statusText}));
      say(j.message || r.statusText, r.ok);
      if (r.ok) refresh();
    } catch (err) { say(String(err), false); }
  });
  const es = new EventSource('/events?page=' + encodeURIComponent(location.pathname));
  es.addEventListener('change', () => {
    const wait = Math.max(0, gap - (Date.now() - last));
    setTimeout(refresh, wait);
  });
  es.onerror = () => { document.getElementById('live').textContent = 'not live (dashboard stopped?)'; };
  es.onopen = () => { document.getElementById('live').textContent = 'live'; };
})();
"""
