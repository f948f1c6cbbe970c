"""Model calls of a run, per proposer: how many, tokens read and written, cost, latency.

A call is a proposal that reported tokens or time spent (a language model's, whether its reply
became a child or not); ``mutate`` reports neither and has none. Read by ``rsi show`` and the
HTML report.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..storage import Candidate, Store

CALLS_QUERY = """
    SELECT proposer, status, COALESCE(prompt_tokens, 0), COALESCE(completion_tokens, 0), COALESCE(tokens, 0),
           COALESCE(cost, 0), propose_seconds
    FROM candidates
    WHERE parent_id IS NOT NULL AND (tokens IS NOT NULL OR propose_seconds IS NOT NULL)
    ORDER BY proposer, id"""


@dataclass(frozen=True)
class CallStats:
    """One proposer's model calls: totals and the per-call distribution."""

    proposer: str
    calls: int
    failed: int  # calls whose reply made no child (invalid: no code, wrong format, endpoint failed ...)
    prompt_tokens: int
    completion_tokens: int
    tokens: int  # prompt + completion (older runs stored only this)
    cost: float
    latency_median: float
    latency_p90: float
    latency_max: float
    prompt_median: float  # tokens per call
    completion_median: float
    seconds: float  # model time, summed

    @property
    def tokens_per_second(self) -> float:
        """Tokens written per second of model time."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation between the closest ranks; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def call_stats(store: Store) -> list[CallStats]:
    """Per proposer with at least one model call, in name order."""
    rows: dict[str, list[tuple]] = {}
    for row in store.conn.execute(CALLS_QUERY):
        rows.setdefault(row[0], []).append(row)
    out = []
    for proposer, calls in rows.items():
        latencies = [r[6] or 0.0 for r in calls]
        out.append(CallStats(
            proposer=proposer, calls=len(calls), failed=sum(1 for r in calls if r[1] == "invalid"),
            prompt_tokens=sum(r[2] for r in calls), completion_tokens=sum(r[3] for r in calls),
            tokens=sum(r[4] for r in calls), cost=sum(r[5] for r in calls),
            latency_median=statistics.median(latencies), latency_p90=percentile(latencies, 0.9),
            latency_max=max(latencies), prompt_median=statistics.median(r[2] for r in calls),
            completion_median=statistics.median(r[3] for r in calls), seconds=sum(latencies)))
    return out


def calls_table(stats: list[CallStats]) -> str:
    """The text table of ``rsi show`` (medians per call in brackets)."""
    head = (f"{'proposer':<10} {'calls':>6} {'failed':>6}  {'tokens in (per call)':>20}  "
            f"{'tokens out (per call)':>21}  {'cost $':>9}  {'latency median':>14} {'p90':>7} {'max':>7}  {'out/s':>6}")
    lines = [head]
    for s in stats:
        lines.append(
            f"{s.proposer:<10} {s.calls:>6} {s.failed:>6}  {_tokens(s.prompt_tokens, s.prompt_median):>20}  "
            f"{_tokens(s.completion_tokens, s.completion_median):>21}  {s.cost:>9.4f}  "
            f"{s.latency_median:>12.2f} s {s.latency_p90:>5.2f} s {s.latency_max:>5.2f} s  {s.tokens_per_second:>6.1f}")
    return "\n".join(lines)


def _tokens(total: int, median: float) -> str:
    return f"{total:,} ({median:,.0f})"


def call_line(cand: Candidate) -> str | None:
    """One candidate's model call, or None if it made none."""
    if cand.tokens is None and cand.propose_seconds is None:
        return None
    split = (f" ({cand.prompt_tokens or 0:,} in, {cand.completion_tokens or 0:,} out)"
             if cand.prompt_tokens is not None or cand.completion_tokens is not None else "")
    return (f"{cand.tokens or 0:,} tokens{split}, cost ${cand.cost or 0.0:.4f}, "
            f"latency {cand.propose_seconds or 0.0:.2f} s")
