"""Plain-text views of a run: summary, best-score chart, top candidates, lineage."""

from __future__ import annotations

from ..oversight.adoption import train_holdout_gap
from ..storage import Candidate, Store
from .calls import call_line, call_stats, calls_table


def score_chart(history: list[tuple[int, float, float]], total: int, width: int = 60, height: int = 12) -> str:
    """Best score so far against evaluations, as a step chart of characters."""
    if not history:
        return "(no valid candidate yet)"
    lo = min(s for _, _, s in history)
    hi = max(s for _, _, s in history)
    span = hi - lo or 1.0
    total = max(total, history[-1][0], 1)
    columns: list[float] = []
    k = 0
    current = history[0][2]
    for x in range(width):
        evals = (x + 1) * total / width
        while k < len(history) and history[k][0] <= evals:
            current = history[k][2]
            k += 1
        columns.append(current)
    rows = []
    for r in range(height, -1, -1):
        level = lo + span * r / height
        label = f"{level:>12.5g} |" if r in (0, height // 2, height) else " " * 12 + " |"
        rows.append(label + "".join("█" if v >= level - 1e-12 else " " for v in columns))
    rows.append(" " * 13 + "+" + "-" * width)
    rows.append(" " * 14 + f"0{'evaluations':^{width - 10}}{total}")
    return "\n".join(rows)


def _short(text: str | None, n: int = 70) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def candidate_line(c: Candidate) -> str:
    score = f"{c.score:.6g}" if c.score is not None else "-"
    return f"{c.id:>6}  {score:>12}  {c.status:<9} {c.operator or c.proposer:<18} {_short(c.rationale, 60)}"


def summary(store: Store, top: int = 10) -> str:
    meta = store.meta()
    counts = store.counts()
    evaluated = sum(counts.get(s, 0) for s in ("ok", "error", "timeout"))
    seed = store.get(1)
    best = store.best()
    lines = [
        f"run        {store.path.parent}",
        f"problem    {meta.get('problem_dir')}",
        f"improver   {meta.get('improver_path')}",
        f"candidates {sum(counts.values())} proposed, {evaluated} evaluated: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        f"seed       score {seed.score}",
    ]
    if best is not None:
        lines.append(f"best       #{best.id} score {best.score:.6g} (seed {seed.score:.6g})")
        if best.holdout:
            lines.append("held-out   " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(best.holdout.items())))
        gap = train_holdout_gap(best)
        if gap is not None:
            threshold = meta.get("settings", {}).get("oversight", {}).get("gap_alarm", 0.25)
            alarm = (f"  ALARM: above {threshold:.0%}, the best may be overfitting its training data"
                     if gap > threshold else "")
            lines.append(f"gap        train/held-out {gap:+.1%} of the train score{alarm}")
    promoted = store.promoted()
    pending = store.promotions("pending")
    waiting = ", ".join("#" + str(r["candidate_id"]) for r in pending)
    lines.append(f"promoted   {('#' + str(promoted.id)) if promoted else 'none yet'}"
                 + (f"; waiting for approval: {waiting}" if pending else ""))
    flagged = store.conn.execute("SELECT COUNT(*) FROM candidates WHERE flags IS NOT NULL").fetchone()[0]
    if flagged:
        lines.append(f"flagged    {flagged} candidates by review (see rsi audit show --kind candidate.flagged)")
    if meta.get("score_mode") == "beside":
        lines.append("scoring    score computed beside the candidate (plain evaluate(); use produce/score to split)")
    elif meta.get("score_mode") == "guarded":
        lines.append("scoring    plain evaluate() in a trusted process, the candidate behind proxies (guard)")
    cascade = cascade_savings(store)
    if cascade is not None:
        lines.append(cascade)
    calls = call_stats(store)
    if calls:
        lines += ["", "model calls (totals; medians per call in brackets; out/s: tokens written per second):",
                  calls_table(calls)]
    lines += ["", "best score over evaluations:", score_chart(store.score_history(), evaluated), ""]
    lines.append(f"{'id':>6}  {'score':>12}  {'status':<9} {'operator':<18} rationale")
    lines += [candidate_line(c) for c in store.top(top)]
    return "\n".join(lines)


def cascade_savings(store: Store) -> str | None:
    """A line on OpenEvolve's cascade: how many candidates stopped before its last stage, and how
    many stage evaluations that saved (None: no candidate went through a cascade)."""
    counts = cascade_counts(store)
    if counts is None:
        return None
    ran, stopped, saved = counts
    return f"cascade    {stopped} of {ran} candidates stopped before the last stage: {saved} stage evaluations saved"


def cascade_counts(store: Store) -> tuple[int, int, int] | None:
    """(candidates that went through a cascade, those stopped before its last stage, the stage
    evaluations that saved); None when no candidate went through one."""
    import json

    ran = stopped = saved = 0
    rows = store.conn.execute("SELECT metrics FROM candidates WHERE status = 'ok' AND metrics LIKE '%cascade_stage%'")
    for (text,) in rows:  # only the candidates a cascade scored (a run without one reads none)
        metrics = json.loads(text) if text else {}
        stage, stages = metrics.get("cascade_stage"), metrics.get("cascade_stages")
        if stage is None or stages is None:
            continue
        ran += 1
        if stage < stages:
            stopped += 1
            saved += int(stages - stage)
    return (ran, stopped, saved) if ran else None


def candidate_view(store: Store, cid: int) -> str:
    """One candidate: where it came from, how it did and was scored (metrics, the cascade stage it
    reached, the artifacts its evaluator handed back), what its model call and evaluation cost."""
    c = store.get(cid)
    score = f"{c.score:.6g}" if c.score is not None else "-"
    lines = [
        f"candidate  #{c.id} {c.status}, score {score}",
        f"parent     {('#' + str(c.parent_id)) if c.parent_id else 'none (the seed)'}"
        + (f"; inspirations {', '.join('#' + str(i) for i in c.inspiration_ids)}" if c.inspiration_ids else ""),
        f"proposer   {c.proposer}" + (f" / {c.operator}" if c.operator else ""),
        f"rationale  {_short(c.rationale, 200)}",
    ]
    if c.error:
        lines.append("error      " + c.error.strip().splitlines()[-1][:200])
    if c.metrics:
        lines.append("metrics    " + ", ".join(f"{k}={v:.6g}" for k, v in sorted(c.metrics.items())))
    stage, stages = c.metrics.get("cascade_stage"), c.metrics.get("cascade_stages")
    if stage is not None:
        reached = f"stage {stage:g}" + (f" of {stages:g}" if stages is not None else "")
        note = " (stopped: below the next stage's threshold)" if stages is not None and stage < stages else ""
        lines.append(f"cascade    reached {reached}{note}")
    if c.holdout:
        lines.append("held-out   " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(c.holdout.items())))
    call = call_line(c)
    if call:
        lines.append(f"model call {call}")
    if c.wall_seconds is not None:
        lines.append(f"evaluation {c.wall_seconds:.2f} s wall, {c.cpu_seconds or 0.0:.2f} s CPU")
    lines += artifact_lines(c.artifacts)
    return "\n".join(lines)


def artifact_lines(artifacts: object, width: int = 400) -> list[str]:
    """The artifacts an evaluator handed back, a line per entry (text cut at ``width``)."""
    import json

    if artifacts is None:
        return []
    items = artifacts.items() if isinstance(artifacts, dict) else [("artifacts", artifacts)]
    out = ["artifacts"]
    for key, value in items:
        text = value if isinstance(value, str) else json.dumps(value)
        text = text.replace("\n", "\n    ")
        out.append(f"  {key}: {text if len(text) <= width else text[: width - 1] + '…'}")
    return out


def lineage(store: Store, cid: int) -> list[Candidate]:
    """The candidate and its ancestors, oldest first."""
    chain = []
    current: int | None = cid
    seen = set()
    while current is not None and current not in seen:
        seen.add(current)
        cand = store.get(current)
        chain.append(cand)
        current = cand.parent_id
    return list(reversed(chain))
