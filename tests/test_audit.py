import io
import json
import math
import sqlite3

import numpy as np
import pytest

from rsi.oversight import audit


def make_trail(n=10, path=":memory:"):
    conn = sqlite3.connect(path)
    audit.ensure_schema(conn)
    conn.commit()
    for i in range(1, n + 1):
        seq = audit.append(
            conn,
            "candidate.evaluated",
            {"id": i, "status": "ok", "score": -3.98 + i / 7, "metrics": {"bins": i * 3}},
            ts=f"2026-11-25T22:31:{i:02d}Z",
        )
        assert seq == i
    conn.commit()
    return conn


def row(conn, seq):
    return conn.execute(
        "SELECT ts, kind, actor, payload, prev_hash, hash FROM audit WHERE seq = ?", (seq,)
    ).fetchone()


def put(conn, seq, values):
    conn.execute(
        "UPDATE audit SET ts=?, kind=?, actor=?, payload=?, prev_hash=?, hash=? WHERE seq=?",
        (*values, seq),
    )


def test_intact_trail_verifies_and_reports_head():
    conn = make_trail()
    report = audit.verify(conn)
    assert report.ok, report.problem
    assert report.events == 10
    assert report.first_bad_seq is None and report.problem is None
    assert report.head_hash == row(conn, 10)[5]
    assert conn.execute("SELECT count, hash FROM audit_head").fetchone() == (10, report.head_hash)
    assert "intact" in report.summary()


def test_empty_trail_is_ok():
    conn = sqlite3.connect(":memory:")
    audit.ensure_schema(conn)
    report = audit.verify(conn)
    assert report.ok and report.events == 0 and report.head_hash == audit.GENESIS


def test_no_audit_table_is_reported():
    report = audit.verify(sqlite3.connect(":memory:"))
    assert not report.ok and "no audit table" in report.problem


def test_append_does_not_commit(tmp_path):
    db = tmp_path / "run.db"
    conn = make_trail(3, db)
    audit.append(conn, "run.stopped", {"reason": "test"})
    other = sqlite3.connect(db)
    assert other.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 3
    conn.rollback()
    assert audit.verify(conn).ok
    assert audit.verify(conn).events == 3


def test_edited_payload_is_named():
    conn = make_trail()
    conn.execute("UPDATE audit SET payload = ? WHERE seq = 4", ('{"id":4,"score":99.0,"status":"ok"}',))
    report = audit.verify(conn)
    assert not report.ok
    assert report.first_bad_seq == 4
    assert report.problem == "event #4 was edited: its hash does not match its content"


def test_edited_kind_or_actor_is_named():
    conn = make_trail()
    conn.execute("UPDATE audit SET actor = 'alice' WHERE seq = 9")
    report = audit.verify(conn)
    assert report.first_bad_seq == 9 and "edited" in report.problem


def test_edited_and_rehashed_event_is_caught_by_the_next_link():
    conn = make_trail()
    ts, kind, actor, _, prev, _ = row(conn, 4)
    payload = audit.canonical_payload({"id": 4, "score": 99.0})
    forged = audit.event_hash(4, ts, kind, actor, payload, prev)
    put(conn, 4, (ts, kind, actor, payload, prev, forged))
    report = audit.verify(conn)
    assert report.first_bad_seq == 4
    assert "#5 links to a different #4" in report.problem


def test_deleted_event_is_named():
    conn = make_trail()
    conn.execute("DELETE FROM audit WHERE seq = 6")
    report = audit.verify(conn)
    assert report.first_bad_seq == 6
    assert report.problem == "event #6 is missing (deleted?): #7 follows #5"


def test_deleted_range_and_first_event():
    conn = make_trail()
    conn.execute("DELETE FROM audit WHERE seq IN (3, 4, 5)")
    assert audit.verify(conn).problem == "events #3..#5 are missing (deleted?): #6 follows #2"
    conn = make_trail()
    conn.execute("DELETE FROM audit WHERE seq = 1")
    report = audit.verify(conn)
    assert report.first_bad_seq == 1 and "the trail starts at #2" in report.problem


def test_deleted_and_renumbered_is_named():
    conn = make_trail()
    conn.execute("DELETE FROM audit WHERE seq = 6")
    for seq in range(7, 11):
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq - 1, seq))
    conn.execute("UPDATE audit_head SET count = 9, hash = (SELECT hash FROM audit WHERE seq = 9)")
    report = audit.verify(conn)
    assert report.first_bad_seq == 6
    assert "event #6 was deleted and the events after it renumbered" in report.problem


def test_swapped_events_are_caught_as_reordered():
    conn = make_trail()
    third, fifth = row(conn, 3), row(conn, 5)
    put(conn, 3, fifth)
    put(conn, 5, third)
    report = audit.verify(conn)
    assert report.first_bad_seq == 3
    assert report.problem == "events #3 and #5 were reordered: each holds the content of the other"


def test_swapped_payloads_only_are_caught():
    conn = make_trail()
    p3, p5 = row(conn, 3)[3], row(conn, 5)[3]
    conn.execute("UPDATE audit SET payload = ? WHERE seq = 3", (p5,))
    conn.execute("UPDATE audit SET payload = ? WHERE seq = 5", (p3,))
    report = audit.verify(conn)
    assert report.first_bad_seq == 3 and not report.ok


def test_forged_row_appended_behind_the_store_is_caught():
    conn = make_trail()
    prev = row(conn, 10)[5]
    payload = audit.canonical_payload({"id": 99, "status": "ok", "score": 0.0})
    ts = "2026-11-25T23:00:00Z"
    digest = audit.event_hash(11, ts, "candidate.promoted", "rsi", payload, prev)
    conn.execute(
        "INSERT INTO audit VALUES (11, ?, 'candidate.promoted', 'rsi', ?, ?, ?)", (ts, payload, prev, digest)
    )
    report = audit.verify(conn)
    assert report.first_bad_seq == 11
    assert "event #11 was added behind the store's back (forged?)" in report.problem


def test_forged_row_inserted_in_the_middle_is_caught():
    conn = make_trail()
    for seq in range(10, 4, -1):  # make room at #5
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq + 1, seq))
    prev = row(conn, 4)[5]
    payload = audit.canonical_payload({"id": 3})
    digest = audit.event_hash(5, "2026-11-25T22:31:04Z", "approval.approved", "alice", payload, prev)
    conn.execute(
        "INSERT INTO audit VALUES (5, '2026-11-25T22:31:04Z', 'approval.approved', 'alice', ?, ?, ?)",
        (payload, prev, digest),
    )
    conn.execute("UPDATE audit_head SET count = 11, hash = (SELECT hash FROM audit WHERE seq = 11)")
    report = audit.verify(conn)
    assert report.first_bad_seq == 5
    assert "an event was inserted at #5" in report.problem


def test_forged_row_with_a_bogus_hash_is_caught_as_inserted():
    conn = make_trail()
    for seq in range(10, 4, -1):
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq + 1, seq))
    conn.execute("INSERT INTO audit VALUES (5, 'x', 'approval.approved', 'alice', '{}', 'bad', 'bad')")
    conn.execute("UPDATE audit_head SET count = 11")
    report = audit.verify(conn)
    assert report.first_bad_seq == 5 and "inserted (forged)" in report.problem


def test_truncated_tail_is_caught_by_the_head():
    conn = make_trail()
    conn.execute("DELETE FROM audit WHERE seq > 8")
    report = audit.verify(conn)
    assert not report.ok
    assert report.first_bad_seq == 9
    assert "the last 2 events are missing (truncated?)" in report.problem


def test_truncation_stays_visible_after_later_appends():
    conn = make_trail()
    conn.execute("DELETE FROM audit WHERE seq > 8")
    assert audit.append(conn, "run.resumed", {}) == 11
    report = audit.verify(conn)
    assert report.first_bad_seq == 9
    assert report.problem == "events #9..#10 are missing (deleted?): #11 follows #8"


def test_missing_head_is_reported_and_not_recreated():
    conn = make_trail()
    conn.execute("DELETE FROM audit_head")
    audit.ensure_schema(conn)
    assert "head is missing" in audit.verify(conn).problem
    audit.append(conn, "run.resumed", {})
    report = audit.verify(conn)
    assert not report.ok and "head is missing" in report.problem


def test_replaced_last_event_is_caught_by_the_head():
    conn = make_trail()
    ts, kind, actor, _, prev, _ = row(conn, 10)
    payload = audit.canonical_payload({"id": 10, "score": 5.0})
    put(conn, 10, (ts, kind, actor, payload, prev, audit.event_hash(10, ts, kind, actor, payload, prev)))
    report = audit.verify(conn)
    assert report.first_bad_seq == 10 and "does not match the head" in report.problem


def test_consistent_rewrite_is_caught_only_with_a_noted_hash():
    conn = make_trail()
    noted = audit.verify(conn).head_hash[:16]
    audit.append(conn, "run.resumed", {})
    assert audit.verify(conn, known=noted).ok  # later appends keep the noted hash in the chain
    # rewrite #10 and #11 consistently, head included
    ts, kind, actor, _, prev, _ = row(conn, 10)
    payload = audit.canonical_payload({"id": 10, "score": 5.0})
    h10 = audit.event_hash(10, ts, kind, actor, payload, prev)
    put(conn, 10, (ts, kind, actor, payload, prev, h10))
    ts, kind, actor, p11, _, _ = row(conn, 11)
    h11 = audit.event_hash(11, ts, kind, actor, p11, h10)
    put(conn, 11, (ts, kind, actor, p11, h10, h11))
    conn.execute("UPDATE audit_head SET hash = ?", (h11,))
    assert audit.verify(conn).ok
    report = audit.verify(conn, known=noted)
    assert not report.ok and "history was rewritten" in report.problem


def test_events_filter_and_payload_round_trip():
    conn = make_trail(3)
    audit.append(conn, "run.stopped", {"reason": "budget", "tuple": (1, 2), "np": np.float64(0.5),
                                      "npi": np.int64(7), "bad": math.inf, "nan": math.nan})
    stopped = audit.events(conn, ["run.stopped"])
    assert len(stopped) == 1
    assert stopped[0].payload == {"reason": "budget", "tuple": [1, 2], "np": 0.5, "npi": 7,
                                  "bad": "inf", "nan": "nan"}
    assert len(audit.events(conn)) == 4
    assert audit.events(conn, []) == []
    assert audit.verify(conn).ok


def test_payload_must_be_json_like():
    conn = make_trail(1)
    with pytest.raises(TypeError, match="payload.obj"):
        audit.append(conn, "x", {"obj": object()})


def test_float_canonical_form_is_stable():
    a = audit.canonical_payload({"b": 0.1 + 0.2, "a": 1e-300, "c": -0.0})
    assert a == '{"a":1e-300,"b":0.30000000000000004,"c":-0.0}'
    assert audit.canonical_payload(json.loads(a)) == a


def test_export_jsonl_round_trips_and_verifies():
    conn = make_trail()
    buffer = io.StringIO()
    assert audit.export_jsonl(conn, buffer) == 10
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 10 and all(json.loads(line)["kind"] for line in lines)
    back = audit.read_jsonl(lines)
    assert back == audit.events(conn)
    assert audit.check_chain(back).ok
    tampered = [line.replace('"id": 3,', '"id": 33,') for line in lines]
    report = audit.check_chain(audit.read_jsonl(tampered))
    assert report.first_bad_seq == 3 and "edited" in report.problem


def test_format_event():
    event = audit.AuditEvent(
        12, "2026-11-25T22:31:02Z", "candidate.evaluated", "rsi",
        {"status": "ok", "score": -3.98, "id": 7, "note": "two words"}, audit.GENESIS, "f" * 64,
    )
    assert audit.format_event(event) == (
        '#12 2026-11-25T22:31:02Z rsi candidate.evaluated id=7 note="two words" score=-3.98 status=ok'
    )
    bare = audit.AuditEvent(1, "t", "run.started", "rsi", {}, audit.GENESIS, "0")
    assert audit.format_event(bare) == "#1 t rsi run.started"


def test_default_timestamp_is_utc_iso():
    conn = make_trail(0)
    audit.append(conn, "run.started", {})
    ts = audit.events(conn)[0].ts
    assert ts.endswith("Z") and ts[10] == "T"


def test_works_with_row_factory_and_explicit_transactions(tmp_path):
    conn = sqlite3.connect(tmp_path / "run.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("BEGIN")
    audit.ensure_schema(conn)
    conn.execute("COMMIT")
    for i in range(3):
        conn.execute("BEGIN")
        audit.append(conn, "candidate.proposed", {"id": i})
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    audit.append(conn, "candidate.proposed", {"id": 99})
    conn.execute("ROLLBACK")
    report = audit.verify(conn)
    assert report.ok and report.events == 3
    assert [e.payload["id"] for e in audit.events(conn)] == [0, 1, 2]
