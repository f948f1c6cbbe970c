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
        self._best_id: int | None = None

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
        columns = ["evaluations", "best score", "evals/s", "failed by kind", "elapsed", "time left", "best id"]
        if snap is not None and (snap.tokens or snap.cost):
            columns.insert(4, "tokens / cost")
        for column in columns:
            table.add_column(column, justify="right")
        if snap is not None:
            row = [f"{snap.evaluations}/{snap.budget}", _fmt_score(snap.best_score), f"{snap.evals_per_second:.1f}",
                   _failures(snap), _fmt_seconds(snap.elapsed), _fmt_seconds(snap.time_left), str(snap.best_id or "-")]
            if snap.tokens or snap.cost:
                row.insert(4, f"{snap.tokens:,} / ${snap.cost:.2f}")
            table.add_row(*row)
            if snap.waiting:
                table.caption = f"waiting for {snap.waiting}: rsi pending / rsi approve (the search goes on)"
        return table

    def __call__(self, snap: Snapshot) -> None:
        if self._live is not None:
            self._live.update(self._table(snap))
            return
        # not a terminal: one line per event (a new best), and a status line every few seconds
        now = time.monotonic()
        if snap.best_id is not None and snap.best_id != self._best_id:
            if self._best_id is not None:
                self.console.print(f"[{_fmt_seconds(snap.elapsed)}] new best: candidate {snap.best_id}, "
                                   f"score {_fmt_score(snap.best_score)}", highlight=False)
            self._best_id = snap.best_id
        if now - self._last_line >= self.every or snap.evaluations >= snap.budget:
            self._last_line = now
            self.console.print(
                f"[{_fmt_seconds(snap.elapsed)}] evals {snap.evaluations}/{snap.budget}"
                f"  best {_fmt_score(snap.best_score)}"
                f"  {snap.evals_per_second:.1f}/s  failed {_failures(snap)}"
                + (f"  tokens {snap.tokens:,} cost ${snap.cost:.2f}" if snap.tokens or snap.cost else "")
                + f"  left {_fmt_seconds(snap.time_left)}"
                + (f"  waiting for {snap.waiting}" if snap.waiting else ""),
                highlight=False,
            )


def _failures(snap: Snapshot) -> str:
    """The share of evaluations that failed, and every kind of failed child by count."""
    kinds = [(kind, snap.counts.get(kind, 0)) for kind in ("error", "timeout", "invalid", "rejected", "duplicate")]
    shown = " ".join(f"{kind} {n}" for kind, n in kinds if n)
    return f"{100 * snap.failed_share:.0f}%" + (f" ({shown})" if shown else "")
