"""Ctrl-C for command-line drivers. The engine never installs signal handlers itself (it may run off
the main thread or inside another program); a command line wraps its run in ``interrupts_stop``."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from .search import Search
from .status import StopReason


@contextlib.contextmanager
def interrupts_stop(search: Search) -> Iterator[None]:
    """Ctrl-C or SIGTERM stops ``search`` cleanly (resumable); a second Ctrl-C stops at once."""

    def on_signal(signum: int, frame: object) -> None:
        if search.stop_reason is StopReason.INTERRUPTED:
            raise KeyboardInterrupt
        search.stop(StopReason.INTERRUPTED)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
