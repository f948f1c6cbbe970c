"""``rsi dashboard``: a live local web app over one or many run folders (standard library only).

    rsi dashboard runs/bp1 runs/bp2 --port 8765
    rsi dashboard                    # every run folder under ./runs

Pages: the runs list; a run (the report's views, the approval queue, a stop button); a candidate
(diffs against its parent and the seed, metrics, held-out results, review flags, the gate's
evidence); the audit trail with its verify status (``Results.verify_audit`` and ``verify_state``).
Pages follow the runs as they are written: server-sent events (``/events``) say when a run's audit
trail grew, and the page fetches its new content (no reload).

Safety: it binds to 127.0.0.1 unless told otherwise, answers only requests whose Host names that
address (no DNS rebinding), and reads runs through ``rsi.open_run`` (read-only). The three actions
(approve, reject: ``rsi.oversight.adoption``, the same audit events as ``rsi approve`` / ``rsi
reject``; stop: the STOP file, like ``rsi stop``) are POST requests that need the token printed at
start (header ``X-RSI-Token``), a JSON body, and an Origin equal to the dashboard's own: a page of
another site can neither read the token nor make such a request.

This module is the HTTP server (the handler, the event stream, the Host, Origin and token checks,
the port); what the pages show and what the actions do is ``rsi.report.dashboard_app``.
"""

from __future__ import annotations

import errno
import hmac
import json
import sys
import threading
from collections.abc import Callable
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import RsiError
from .dashboard_app import ActionError, Dashboard, Reply, find_runs

DEFAULT_PORT = 8765
POLL_SECONDS = 1.0  # how often the event stream looks at the runs' audit heads
TOKEN_HEADER = "X-RSI-Token"


def check_action(headers: Any, token: str) -> None:
    """Refuse a state-changing request that is not from this dashboard's page with the token."""
    origin = headers.get("Origin")
    host = headers.get("Host", "")
    if origin is None or origin != f"http://{host}":
        raise ActionError(403, f"refused: cross-site or scripted request (Origin {origin!r}, Host {host!r})")
    if "application/json" not in (headers.get("Content-Type") or ""):
        raise ActionError(415, "refused: actions take a JSON body")
    given = headers.get(TOKEN_HEADER) or ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise ActionError(403, "refused: the action token is missing or wrong (it is printed by `rsi dashboard` "
                               "at start; paste it into the token field)")


def make_handler(app: Dashboard, stopping: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "rsi-dashboard"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

        def _send(self, reply: Reply) -> None:
            data = reply.body.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; "
                             "script-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(Reply(status, json.dumps(payload), "application/json"))

        def _host_ok(self) -> bool:
            if self.headers.get("Host", "") in app.allowed_hosts:
                return True
            self._json(403, {"ok": False, "message": "refused: unknown Host (open the address rsi dashboard printed)"})
            return False

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not self._host_ok():
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            try:
                if url.path == "/events":
                    self._events(query.get("page", ["/"])[0])
                    return
                self._send(app.page(url.path, query))
            except ActionError as exc:
                self._send(Reply(exc.status, app.layout("not found", f'<p class="bad">{escape(str(exc))}</p>')))
            except RsiError as exc:
                self._send(Reply(500, app.layout("error", f'<p class="bad">{escape(str(exc))}</p>')))

        def do_POST(self) -> None:  # noqa: N802
            if not self._host_ok():
                return
            try:
                check_action(self.headers, app.token)
                length = int(self.headers.get("Content-Length") or 0)
                if length > 100_000:
                    raise ActionError(413, "request too large")
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    raise ActionError(400, "the body is not JSON") from None
                if not isinstance(body, dict):
                    raise ActionError(400, "the body must be a JSON object")
                self._json(200, app.act(urlsplit(self.path).path, body))
            except ActionError as exc:
                self._json(exc.status, {"ok": False, "message": str(exc)})

        def do_PUT(self) -> None:  # noqa: N802
            self._json(405, {"ok": False, "message": "only GET and POST"})

        do_DELETE = do_PATCH = do_OPTIONS = do_PUT  # noqa: N815 (no preflight is ever answered)

        def _events(self, page: str) -> None:
            runs = app.watched(page)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            last = app.signature(runs)
            quiet = 0.0
            try:
                self.wfile.write(b"retry: 2000\n\n")
                self.wfile.flush()
                while not stopping.is_set():
                    stopping.wait(POLL_SECONDS)
                    quiet += POLL_SECONDS
                    now = app.signature(runs)
                    if now != last:
                        last = now
                        self.wfile.write(f"event: change\ndata: {now}\n\n".encode())
                        self.wfile.flush()
                        quiet = 0.0
                    elif quiet >= 15:
                        self.wfile.write(b": ping\n\n")
                        self.wfile.flush()
                        quiet = 0.0
            except (BrokenPipeError, ConnectionResetError, OSError):
                return

    return Handler


class DashboardServer:
    """The app on a threaded HTTP server. ``start()`` serves in a thread (tests); ``serve_forever()`` blocks."""

    def __init__(self, roots: list[Path], port: int = DEFAULT_PORT, host: str = "127.0.0.1",
                 token: str | None = None):
        self.app = Dashboard(roots, token)
        self.stopping = threading.Event()
        try:
            self.httpd = ThreadingHTTPServer((host, port), make_handler(self.app, self.stopping))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RsiError(f"port {port} on {host} is already in use (another dashboard?); pass --port with a "
                               "free port, or --port 0 for any free one") from None
            raise RsiError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.host, self.port = host, int(self.httpd.server_address[1])
        shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
        self.app.allowed_hosts = {f"{host}:{self.port}", f"{shown}:{self.port}", f"localhost:{self.port}"}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def token(self) -> str:
        return self.app.token

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rsi-dashboard", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(roots: list[Path], port: int = DEFAULT_PORT, host: str = "127.0.0.1",
          out: Callable[[str], None] | None = None) -> int:
    """``rsi dashboard``: serve until Ctrl-C."""
    say = out or (lambda text: print(text, file=sys.stderr, flush=True))
    server = DashboardServer(roots, port, host)
    runs = server.app.refresh_runs()
    say(f"rsi dashboard: {server.url}  ({len(runs)} run folders from {', '.join(map(str, server.app.roots))})")
    say(f"action token: {server.token}  (approve, reject and stop need it: paste it into the page, or open "
        f"{server.url}#token={server.token})")
    if host not in ("127.0.0.1", "::1", "localhost"):
        say(f"WARNING: listening on {host}: other machines can read these runs")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        say("dashboard stopped")
    finally:
        server.stopping.set()
        server.httpd.server_close()
    return 0


__all__ = ["DEFAULT_PORT", "Dashboard", "DashboardServer", "find_runs", "serve"]
