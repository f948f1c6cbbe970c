"""The dashboard's incremental run view equals a full rebuild (``html.collect``) after every kind of write."""

from __future__ import annotations

import dataclasses
import random

import rsi
from rsi.report import html
from rsi.report.live import LiveView
from rsi.storage import Store

SOURCE = "def solve(x):\n    return x\n"


def same(live: html.RunView, full: html.RunView) -> None:
    got, want = dataclasses.replace(live, made_at=0), dataclasses.replace(full, made_at=0)
    for f in dataclasses.fields(html.RunView):
        assert getattr(got, f.name) == getattr(want, f.name), f.name
    assert html.sections(live) == html.sections(full)


def check(view: LiveView, run_dir) -> int:
    with rsi.open_run(run_dir) as results:
        live = view.update(results)
        full = html.collect(results)
    same(live, full)
    return view.reads


def test_incremental_view_equals_a_full_rebuild(tmp_path):
    run_dir = tmp_path / "run"
    store = Store.create(run_dir, {"settings": {"report": {"references": {"paper": 2.5}}}})
    rnd = random.Random(4)
    view = LiveView(run_dir)
    assert check(view, run_dir) == 0  # an empty run
    seed = store.insert_candidate({"proposer": "seed", "source": SOURCE, "status": "pending"})
    check(view, run_dir)
    store.update_candidate(seed, {"status": "ok", "score": 1.0, "evaluated_at": 1.0})
    check(view, run_dir)
    pending: list[int] = []
    operators = ["mutate", "crossover", None]
    for step in range(12):  # batches of writes, like a run with two workers
        for _ in range(rnd.randint(1, 6)):
            parent = rnd.randint(1, store.next_id() - 1)
            pending.append(store.insert_candidate({
                "proposer": rnd.choice(["grammar", "llm"]), "operator": rnd.choice(operators), "parent_id": parent,
                "source": SOURCE + f"# {step}\n", "status": "pending", "tokens": rnd.choice([None, 120]),
                "cost": rnd.choice([None, 0.25])}))
        rnd.shuffle(pending)
        for cid in pending[:rnd.randint(0, len(pending))]:  # evaluated out of id order
            status = rnd.choice(["ok", "ok", "ok", "error", "timeout", "invalid", "duplicate", "rejected"])
            fields = {"status": status, "evaluated_at": 2.0 + step + rnd.random()}
            if status == "ok":
                fields["score"] = round(rnd.uniform(0, 3) + step * 0.2, 3)
            else:
                fields["error"] = rnd.choice(["Traceback (most recent call last):\nValueError: bad 3",
                                              "timed out after 10 s", "no solve() (line 4)"])
            if rnd.random() < 0.2:
                fields["flags"] = [{"code": "E1", "line": rnd.randint(1, 9), "message": "imports os"}]
            store.update_candidate(cid, fields)
            pending.remove(cid)
        if step == 5:  # a finished candidate changes later: the best gets its held-out results
            best = store.best()
            assert best is not None
            store.update_candidate(best.id, {"holdout": {"combined_score": best.score - 0.1}})
            store.add_promotion(best.id, "pending", {"incumbent": 1, "summary": "better"}, "promotion.requested")
        if step == 8:
            request = store.promotions("pending")[0]
            store.decide_promotion(request["id"], "promoted", "tester", "fine")
            store.update_candidate(1, {"holdout": {"combined_score": 0.9}, "rationale": "the seed, re-checked"})
        reads = check(view, run_dir)
        assert reads <= store.next_id() - 1
    total = store.next_id() - 1
    for cid in list(pending):  # the rest finish
        store.update_candidate(cid, {"status": "ok", "score": 9.0 + cid / 1000, "evaluated_at": 50.0})
    check(view, run_dir)
    assert check(view, run_dir) == 0  # nothing written: nothing read
    store.insert_candidate({"proposer": "grammar", "parent_id": 2, "source": SOURCE, "status": "ok", "score": 0.5,
                            "evaluated_at": 60.0})
    assert check(view, run_dir) == 1  # one new candidate: one row read, not the run's
    stuck = store.insert_candidate({"proposer": "grammar", "parent_id": 1, "source": SOURCE, "status": "running"})
    for _ in range(5):
        store.insert_candidate({"proposer": "grammar", "parent_id": stuck - 1, "source": SOURCE, "status": "error",
                                "error": "boom", "evaluated_at": 61.0})
    check(view, run_dir)
    store.insert_candidate({"proposer": "grammar", "parent_id": 2, "source": SOURCE, "status": "pending"})
    assert check(view, run_dir) == 2  # the new one and the one still running, not those between
    store.update_candidate(stuck, {"status": "ok", "score": 99.0, "evaluated_at": 62.0})
    check(view, run_dir)
    assert total > 20
    store.close()


def test_a_replaced_database_is_read_again_in_full(tmp_path):
    run_dir = tmp_path / "run"
    store = Store.create(run_dir, {})
    store.insert_candidate({"proposer": "seed", "source": SOURCE, "status": "ok", "score": 1.0, "evaluated_at": 1.0})
    store.close()
    view = LiveView(run_dir)
    check(view, run_dir)
    (run_dir / "rsi.db").unlink()
    store = Store.create(run_dir, {})
    store.insert_candidate({"proposer": "seed", "source": SOURCE, "status": "error", "error": "boom",
                            "evaluated_at": 1.0})
    store.close()
    check(view, run_dir)
