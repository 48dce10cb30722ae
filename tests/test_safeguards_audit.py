"""Rule 4: the audit trail is append-only, durable and tamper-evident; CSV export."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
import redis
from redis.commands.core import Script
from typer.testing import CliRunner

from kernel.redis_client import redis_from_url
from safeguards.audit import (
    GENESIS_HASH,
    REQUESTED,
    UNDONE,
    Anchor,
    AuditError,
    AuditLog,
    AuditNotDurableError,
    AuditRecord,
    Metric,
)
from safeguards.wiring import Safeguards
from sim.local_services import LocalRedis


@pytest.fixture
def log(client: redis.Redis) -> AuditLog:
    return AuditLog(client)


def fill(log: AuditLog, n: int) -> list[AuditRecord]:
    return [log.append(actor=f"user{i}", agency="denver-co-pd", action="search",
                       decision="allowed", details={"case_number": f"C-{i}", "result_count": i})
            for i in range(1, n + 1)]


def rewrite(client: redis.Redis, log: AuditLog, records: list[dict]) -> None:
    """Replace the whole stream with `records` (what someone with Redis access could do:
    a stream entry cannot be edited in place)."""
    client.delete(log.stream_key)
    for rec in records:
        client.xadd(log.stream_key, {"r": json.dumps(rec)})


def raw_records(client: redis.Redis, log: AuditLog) -> list[dict]:
    return [json.loads(f[b"r"]) for _, f in client.xrange(log.stream_key)]


def test_chain_links_every_record(log: AuditLog) -> None:
    records = fill(log, 5)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    for prev, rec in pairwise(records):
        assert rec.prev_hash == prev.hash
        assert rec.hash == rec.expected_hash()
    report = log.verify()
    assert report.ok and report.records == 5 and report.head_seq == 5


def test_edited_record_is_reported(log: AuditLog, client: redis.Redis) -> None:
    fill(log, 6)
    recs = raw_records(client, log)
    recs[2]["details"]["case_number"] = "C-OTHER"  # hide what case a search was for
    rewrite(client, log, recs)
    first = log.verify().first
    assert first is not None and (first.kind, first.seq) == ("edited", 3)


def test_edited_and_rehashed_record_is_reported(log: AuditLog, client: redis.Redis) -> None:
    fill(log, 6)
    recs = raw_records(client, log)
    recs[2]["actor"] = "someone-else"
    body = {k: v for k, v in recs[2].items() if k != "hash"}
    recs[2]["hash"] = AuditRecord(**body, hash="x").expected_hash()
    rewrite(client, log, recs)
    first = log.verify().first
    assert first is not None and (first.kind, first.seq) == ("edited", 3)


def test_reordered_records_are_reported(log: AuditLog, client: redis.Redis) -> None:
    fill(log, 6)
    recs = raw_records(client, log)
    recs[3], recs[4] = recs[4], recs[3]
    rewrite(client, log, recs)
    report = log.verify()
    assert [(i.kind, i.seq) for i in report.issues] == [("reordered", 4)]


def test_deleted_record_is_reported(log: AuditLog, client: redis.Redis) -> None:
    fill(log, 6)
    ids = [sid for sid, _ in client.xrange(log.stream_key)]
    client.xdel(log.stream_key, ids[1])
    report = log.verify()
    assert [(i.kind, i.seq) for i in report.issues] == [("deleted", 2)]


def test_deleted_last_records_are_reported(log: AuditLog, client: redis.Redis) -> None:
    fill(log, 6)
    ids = [sid for sid, _ in client.xrange(log.stream_key)]
    client.xdel(log.stream_key, *ids[-2:])
    first = log.verify().first
    assert first is not None and (first.kind, first.seq) == ("deleted", 5)


def test_cut_tail_with_rewritten_head_is_caught_by_an_anchor(log: AuditLog,
                                                            client: redis.Redis) -> None:
    records = fill(log, 6)
    anchor = Anchor.parse(f"seq={records[-1].seq} hash={records[-1].hash}")
    ids = [sid for sid, _ in client.xrange(log.stream_key)]
    client.xdel(log.stream_key, *ids[-2:])
    four = records[3]
    client.set(log.head_key, f"{four.seq} {four.ts} {four.hash}")  # hide the cut
    assert log.verify().ok  # the chain alone cannot tell...
    report = log.verify([anchor])  # ...the copy kept outside can
    assert [(i.kind, i.seq) for i in report.issues] == [("deleted", 6)]


def test_replaced_trail_is_caught_by_an_anchor(log: AuditLog, client: redis.Redis) -> None:
    records = fill(log, 3)
    anchor = Anchor(records[1].seq, records[1].hash)
    client.delete(log.stream_key, log.head_key)  # wipe everything...
    assert log.verify().ok
    assert [(i.kind, i.seq) for i in log.verify([anchor]).issues] == [("deleted", 2)]
    fill(log, 3)  # ...and write a new chain as long as the old one
    assert log.verify().ok
    assert [(i.kind, i.seq) for i in log.verify([anchor]).issues] == [("edited", 2)]


def test_anchor_format() -> None:
    digest = "ab" * 32
    assert Anchor.parse(f"seq=12 hash={digest}") == Anchor(12, digest)
    assert Anchor.parse(f"exported 3 records; chain head seq=12 hash={digest} (keep)") == (
        Anchor(12, digest))
    assert Anchor.parse(f"12:{digest}") == Anchor(12, digest)
    for bad in ("", "seq=0 hash=" + digest, "12:" + digest[:-1], f"seq=x hash={digest}"):
        with pytest.raises(ValueError, match="anchor"):
            Anchor.parse(bad)


def test_audit_is_kept_indefinitely(log: AuditLog, client: redis.Redis) -> None:
    fill(log, 3)
    log.append(actor="a", agency="b", action="search", decision="allowed",
               metrics=["search_allowed"])
    # No expiry on the trail or its head, and the stream is never trimmed.
    assert client.pttl(log.stream_key) == -1 and client.pttl(log.head_key) == -1
    assert client.xinfo_stream(log.stream_key)["length"] == 4


def test_appends_refuse_once_the_head_is_gone(log: AuditLog, client: redis.Redis) -> None:
    fill(log, 2)
    client.delete(log.head_key)  # would let a new chain start over the old one
    with pytest.raises(Exception, match="head missing"):
        log.append(actor="a", agency="b", action="c", decision="allowed")
    assert client.xlen(log.stream_key) == 2


def test_concurrent_appends_stay_ordered_and_gap_free(log: AuditLog,
                                                      server: LocalRedis) -> None:
    def worker(n: int) -> None:
        own = AuditLog(server.client())  # each writer its own connection, as in production
        for i in range(25):
            own.append(actor=f"w{n}", agency="a", action="search", decision="allowed",
                       details={"i": i})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(log.records())
    assert [r.seq for r in records] == list(range(1, 151))
    assert all(a.ts <= b.ts for a, b in pairwise(records))
    assert log.verify().ok


def test_an_append_that_timed_out_on_a_hung_audit_redis_never_lands_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: a counted append (`verified`, metric alert_verified) by a client that gives up
    # after 0.5 s (as every client of the API and CLI does), its own durable audit
    # Redis frozen (SIGSTOP) just as the append's script is sent, thawed (SIGCONT) once
    # the client has given up. Must hold: AuditError in time; after the thaw (which
    # still runs what the frozen server was sent) the record never appears, the head
    # and the counter did not move, the chain verifies and the next append is seq 2.
    # (Before, the record the caller was told failed landed on the thaw, and counted.)
    with LocalRedis(appendonly=True) as srv:
        log = AuditLog(redis_from_url(srv.url, timeout_s=0.5))
        fill(log, 1)
        call = Script.__call__
        frozen: list[int] = []

        def freeze_then_call(self: Script, keys: object = None, args: object = None,
                             client: object = None) -> object:
            if not frozen:
                frozen.append(1)
                os.kill(pid, signal.SIGSTOP)
            return call(self, keys, args, client)

        pid = int(srv.client().info("server")["process_id"])
        monkeypatch.setattr(Script, "__call__", freeze_then_call)
        started = time.monotonic()
        try:
            with pytest.raises(AuditError, match="Timeout"):
                log.append(actor="disp", agency="denver-co-pd", action="alert_verification",
                           decision="verified", details={"request_seq": 1},
                           metrics=(Metric.ALERT_VERIFIED,))
        finally:
            os.kill(pid, signal.SIGCONT)
            monkeypatch.setattr(Script, "__call__", call)
        assert frozen and time.monotonic() - started < 3
        time.sleep(0.5)  # the thawed server runs what it was sent
        check = AuditLog(srv.client())
        assert [r.decision for r in check.records()] == ["allowed"]
        assert check.head().seq == 1
        assert check.count(Metric.ALERT_VERIFIED, 0) == 0
        assert check.verify().ok
        assert log.append(actor="x", agency="y", action="z", decision="allowed").seq == 2


def test_an_undone_record_takes_back_the_count_of_an_outcome_that_landed(
    log: AuditLog,
) -> None:
    # Fed: two verification requests, each with a counted `verified` outcome; the first
    # is then undone (its outcome landed, but the caller never heard so and undid the
    # verification), and a third request, whose outcome never landed, is undone too.
    # Must hold: each `undone` record names its request and follows it; the counter the
    # transparency page reads drops by exactly the one undone outcome that landed (the
    # other verification still counts); the chain verifies.
    def request() -> AuditRecord:
        return log.append(actor="disp", agency="denver-co-pd", action="alert_verification",
                          decision=REQUESTED, details={"alert_id": "a" * 32})

    def outcome(req: AuditRecord) -> AuditRecord:
        return log.append(actor="disp", agency="denver-co-pd", action="alert_verification",
                          decision="verified", details={"request_seq": req.seq},
                          metrics=(Metric.ALERT_VERIFIED,))

    first, second = request(), request()
    outcome(first), outcome(second)
    assert log.count(Metric.ALERT_VERIFIED, 0) == 2
    lost = AuditError("audit trail unavailable: Timeout reading from socket")
    undone = log.append_undone(first, lost, undid="verified",
                               metrics=(Metric.ALERT_VERIFIED,))
    assert undone is not None
    assert (undone.decision, undone.actor, undone.action) == (
        UNDONE, "disp", "alert_verification")
    assert undone.details == {"request_seq": first.seq, "undid": "verified",
                              "error": f"AuditError: {lost}"}
    assert log.count(Metric.ALERT_VERIFIED, 0) == 1
    third = request()
    assert log.append_undone(third, lost, undid="verified",
                             metrics=(Metric.ALERT_VERIFIED,)) is not None
    assert log.count(Metric.ALERT_VERIFIED, 0) == 1
    assert [r.decision for r in log.records()] == [
        REQUESTED, REQUESTED, "verified", "verified", UNDONE, REQUESTED, UNDONE]
    assert log.verify().ok


def test_audit_survives_a_crash_of_the_audit_redis(tmp_path: Path) -> None:
    with LocalRedis(appendonly=True, data_dir=tmp_path / "audit") as srv:
        c = srv.client()
        log = AuditLog(c)
        log.ensure_durable()
        written = fill(log, 20)
        pid = int(c.info("server")["process_id"])
        os.kill(pid, signal.SIGKILL)  # no shutdown, no final fsync: appendfsync always
        srv.stop()  # only reaps the killed process
        srv.start()
        c = srv.client()
        log = AuditLog(c)
        assert list(log.records()) == written
        assert log.verify().ok
        assert log.append(actor="x", agency="y", action="z", decision="allowed").seq == 21
        srv.restart()  # a clean restart too
        assert AuditLog(srv.client()).verify().records == 21


def test_non_durable_audit_redis_is_refused(redis_client: redis.Redis,
                                            client: redis.Redis) -> None:
    # conftest's session Redis runs without an AOF.
    with pytest.raises(AuditNotDurableError):
        AuditLog(redis_client).ensure_durable()
    with pytest.raises(AuditNotDurableError):
        Safeguards.build(data=client, audit=redis_client)


def test_export_csv_since_a_date(client: redis.Redis) -> None:
    day = 86_400_000
    jan, feb = (int(datetime(2025, m, 1, tzinfo=UTC).timestamp() * 1000) for m in (1, 2))
    clock = iter([jan, jan + day, feb, feb + day])
    log = AuditLog(client, clock=lambda: next(clock))
    for i in range(4):
        log.append(actor=f"u{i}", agency="denver-co-pd", action="search", decision="allowed",
                   details={"case_number": f"C-{i}", "reason": "=HYPERLINK(\"http://x\")",
                            "query": {"plate": "ABC*"}, "result_count": i, "offence": "robbery"})
    out = io.StringIO()
    since = int(datetime(2025, 1, 15, tzinfo=UTC).timestamp() * 1000)
    assert log.export_csv(out, since) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["seq"] for r in rows] == ["3", "4"]
    assert rows[0]["time_utc"].startswith("2025-02-01T00:00:00")
    assert (rows[0]["actor"], rows[0]["case_number"], rows[0]["result_count"]) == (
        "u2", "C-2", "2")
    assert rows[0]["reason"].startswith("'=")  # spreadsheet formula defused
    assert json.loads(rows[0]["details_json"])["reason"].startswith("=")  # raw kept
    assert rows[1]["hash"] == list(log.records())[-1].hash


def test_cli_verify_and_export(data_server: LocalRedis, client: redis.Redis, server: LocalRedis,
                               tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from alpr.cli import app

    monkeypatch.setenv("ALPR_SG_REDIS_URL", data_server.url)
    monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    log = AuditLog(client)
    fill(log, 4)
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "OK: 4 records" in result.output
    out = tmp_path / "audit.csv"
    result = runner.invoke(app, ["audit", "export", "--since", "2000-01-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader(out.open()))) == 4
    assert list(log.records())[-1].action == "audit_export"  # the export is audited too
    result = runner.invoke(app, ["audit", "export", "--since", "2000-01-01"])  # stdout
    assert result.exit_code == 0 and result.stdout.startswith("seq,time_utc,actor")
    assert "chain head seq=5" in result.stderr
    head = runner.invoke(app, ["audit", "head"]).output.strip()
    assert runner.invoke(app, ["audit", "verify", "--anchor", head]).exit_code == 0
    pristine = raw_records(client, log)
    for change, expected in [("edit", "BROKEN: first at seq 2: edited"),
                             ("swap", "BROKEN: first at seq 2: reordered"),
                             ("drop", "BROKEN: first at seq 2: deleted")]:
        recs = [dict(r) for r in pristine]
        if change == "edit":
            recs[1]["decision"] = "refused:x"
        elif change == "swap":
            recs[1], recs[2] = recs[2], recs[1]
        else:
            del recs[1]
        rewrite(client, log, recs)
        result = runner.invoke(app, ["audit", "verify"])
        assert result.exit_code == 1 and expected in result.output, (change, result.output)
    # The last records cut and the head key moved back: only the anchor shows it.
    rewrite(client, log, pristine[:3])
    client.set(log.head_key, "3 {ts} {hash}".format(**pristine[2]))
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    result = runner.invoke(app, ["audit", "verify", "--anchor", head])
    assert result.exit_code == 1 and "deleted" in result.output
    # Bad input: a clear error, exit 2, nothing written.
    before = client.xlen(log.stream_key)
    for args in (["audit", "export", "--since", "bad"],
                 ["audit", "export", "--since", "2000-01-01", "--out",
                  str(tmp_path / "no" / "such" / "dir.csv")],
                 ["audit", "verify", "--anchor", "yesterday's"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args
    assert client.xlen(log.stream_key) == before


def test_cli_refuses_a_non_durable_audit_redis_clearly(data_server: LocalRedis,
    redis_server: LocalRedis, server: LocalRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alpr.cli import app

    monkeypatch.setenv("ALPR_SG_REDIS_URL", data_server.url)
    monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", redis_server.url)  # no AOF
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 2
    assert "appendfsync always" in result.output and result.exception is not None
    assert not isinstance(result.exception, AuditNotDurableError)  # a clean exit


def test_a_wiped_or_rechained_trail_fails_verify_by_default(
        data_server: LocalRedis, client: redis.Redis, server: LocalRedis, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fed: a trail of 4 records written with ALPR_SG_AUDIT_HEAD_FILE set (a head
    published on every record), then the trail wiped, then a new consistent chain of 4
    written in its place. Must survive: `alpr audit verify`, with no --anchor, says OK
    first and exits 1 for the wiped and for the re-chained trail, naming the record."""
    from alpr.cli import app

    heads = tmp_path / "audit-heads.log"
    monkeypatch.setenv("ALPR_SG_REDIS_URL", data_server.url)
    monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_HEAD_FILE", str(heads))
    monkeypatch.setenv("ALPR_SG_AUDIT_HEAD_PUBLISH_S", "0")
    from safeguards.head_log import PublishedHeads

    log = AuditLog(client, on_head=PublishedHeads(heads, every_s=0).after_append)
    fill(log, 4)
    assert len(heads.read_text().splitlines()) == 4
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "4 published heads" in result.output, result.output
    client.delete(log.stream_key, log.head_key)  # wiped
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "seq 4: deleted" in result.output, result.output
    fill(AuditLog(client), 4)  # a new chain as long as the old one, not published
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "seq 1: edited" in result.output, result.output
    # A heads file that cannot be read is one line and exit 2, not an OK.
    heads.write_text("seq=banana\n")
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 2 and "published audit heads" in result.output
