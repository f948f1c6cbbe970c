"""Live progress of a run in the terminal (rich), or a line every few seconds when not a TTY."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..search import Snapshot


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _fmt_score(score: float | None) -> str:
    return "-" if score is None else f"{score:.6g}"


class ProgressDisplay:
    """Call with each Snapshot; use as a context manager around the run."""

    def __init__(self, console: Console | None = None, every: float = 5.0):
        self.console = console or Console(stderr=True)
        self.every = every
        self._live: Live | None = None
        self._last_line = 0.0

    def __enter__(self) -> ProgressDisplay:
        if self.console.is_terminal:
            self._live = Live(self._table(None), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _table(self, snap: Snapshot | None) -> Table:
        table = Table(show_header=True, header_style="bold", box=None)
        for column in ("evaluations", "best score", "evals/s", "failed", "elapsed", "time left", "best id"):
            table.add_column(column, justify="right")
        if snap is not None:
            table.add_row(
                f"{snap.evaluations}/{snap.budget}", _fmt_score(snap.best_score), f"{snap.evals_per_second:.1f}",
                f"{100 * snap.failed_share:.0f}%", _fmt_seconds(snap.elapsed), _fmt_seconds(snap.time_left),
                str(snap.best_id or "-"),
            )
            if snap.waiting:
                table.caption = f"waiting for {snap.waiting}: rsi pending / rsi approve (the search goes on)"
        return table

    def __call__(self, snap: Snapshot) -> None:
        if self._live is not None:
            self._live.update(self._table(snap))
            return
        now = time.monotonic()
        if now - self._last_line >= self.every or snap.evaluations >= snap.budget:
            self._last_line = now
            self.console.print(
                f"[{_fmt_seconds(snap.elapsed)}] evals {snap.evaluations}/{snap.budget}"
                f"  best {_fmt_score(snap.best_score)}"
                f"  {snap.evals_per_second:.1f}/s  failed {100 * snap.failed_share:.0f}%"
                f"  left {_fmt_seconds(snap.time_left)}"
                + (f"  waiting for {snap.waiting}" if snap.waiting else ""),
                highlight=False,
            )
