"""Imports end to end against a real Redis (and a real broker for the events): file ->
importer -> checks -> atomic swap -> status -> alpr.hotlist-updates; and the drop-folder
watcher.

Each test says what it feeds and what must survive. The rule throughout: a bad, empty,
truncated or aborted file changes nothing; the previous version keeps serving.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from hotlist_helpers import version_keys

from connectors.kafka import delete_topics, read_all
from flows.hotlist_join import join_reads
from hotlists.events import HotlistUpdate, KafkaUpdatePublisher, MemoryUpdatePublisher
from hotlists.import_run import (
    Importer,
    ImportFailedError,
    ImportInterruptedError,
    ListShrinkError,
    TooManyBadRowsError,
)
from hotlists.importers import ccic
from hotlists.importers.ncic import format_record
from hotlists.matching import match_plates
from hotlists.store import EmptyHotlistError, HotlistStore
from hotlists.watch import FolderWatcher
from kernel.contracts import HotlistSource, PlateRead

NCIC = HotlistSource.NCIC
NCMEC = HotlistSource.NCMEC
LOCAL = HotlistSource.LOCAL


def ncic_file(path: Path, plates: list[str], *, code: str = "V", bad: int = 0,
              immigration: list[str] = ()) -> Path:  # type: ignore[assignment]
    """An NCIC extract: a header, one `code` record per plate, `bad` garbled lines at the
    end (where an abort hurts most: everything else is already written) and Immigration
    Violator records."""
    lines = ["NCIC LPR EXTRACT 202401150600"]
    lines += [format_record(code, p, "CO", record_id=f"{i:09d}CO0000000", incident="20240115")
              for i, p in enumerate(plates)]
    lines += [format_record("I", p, "CO", record_id=f"I{i:08d}") for i, p in enumerate(immigration)]
    lines += [f"?{i:09d} garbled" for i in range(bad)]
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def plates(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


@pytest.fixture
def store(redis_client: redis.Redis) -> HotlistStore:
    return HotlistStore(redis_client)


@pytest.fixture
def events() -> MemoryUpdatePublisher:
    return MemoryUpdatePublisher()


@pytest.fixture
def importer(store: HotlistStore, events: MemoryUpdatePublisher) -> Importer:
    return Importer(store, publisher=events)


def test_ncic_import_replaces_the_list_and_refuses_immigration_records(
    importer: Importer, store: HotlistStore, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Fed: 40 stolen-vehicle records and 3 Immigration Violator records.
    path = ncic_file(tmp_path / "a.txt", plates("OLD", 40), immigration=["IMM001", "IMM002",
                                                                           "IMM003"])
    report = importer.import_file("ncic", path)
    assert (report.version, report.entries, report.stats.refused_total) == (1, 40, 3)
    assert store.lookup("OLD00007")[0].category == "stolen_vehicle"
    # Refused means never stored: no key and no value anywhere in Redis names the plate.
    assert store.lookup("IMM001") == []
    for key in redis_client.scan_iter(count=1000):
        kind = redis_client.type(key)
        blob = (str(redis_client.hgetall(key)) if kind == b"hash" else
                str(redis_client.smembers(key)) if kind == b"set" else
                str(redis_client.get(key)))
        assert "IMM00" not in key.decode() + blob

    # The next extract replaces the whole list in one step.
    report2 = importer.import_file("ncic", ncic_file(tmp_path / "b.txt", plates("NEW", 30)))
    assert (report2.version, report2.previous_version, report2.entries) == (2, 1, 30)
    assert store.lookup("OLD00007") == [] and store.lookup("NEW00007")
    assert version_keys(redis_client, NCIC) == {"v2"}


def test_too_many_bad_rows_abort_and_the_old_list_keeps_serving(
    store: HotlistStore, redis_client: redis.Redis, tmp_path: Path
) -> None:
    importer = Importer(store, max_bad_share=0.05)
    importer.import_file("ncic", ncic_file(tmp_path / "a.txt", plates("OLD", 100)))
    # Fed: 12,000 good records (written in several batches before the end) then 1,000
    # garbled lines (7.7% > 5%). Must survive: version 1, untouched, and no trace of v2.
    bad_file = ncic_file(tmp_path / "b.txt", plates("NEW", 12_000), bad=1000)
    seen_new: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        # A lookup never sees a half-written (or aborted) list.
        while not stop.is_set():
            hits = store.lookup_many(["OLD00001", "NEW00001", "NEW11999"])
            if not hits[0] or hits[1] or hits[2]:
                seen_new.append(repr(hits))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with pytest.raises(ImportFailedError) as failed:
            importer.import_file("ncic", bad_file)
    finally:
        stop.set()
        thread.join(10)
    assert isinstance(failed.value.__cause__, TooManyBadRowsError)
    assert not seen_new, seen_new[:3]
    report = failed.value.report
    assert report.stats.rejected_total == 1000 and report.stats.rows == 13_000
    assert report.stats.samples[0].line_no == 12_002  # header + 12,000 records before it
    assert store.lookup("OLD00001") and store.lookup("NEW00001") == []
    assert version_keys(redis_client, NCIC) == {"v1"}
    status = store.status()[NCIC]
    assert (status.version, status.entries, status.importing) == (1, 100, False)
    assert status.last_attempt is not None and status.last_attempt["ok"] is False
    assert "TooManyBadRowsError" in status.last_attempt["error"]
    assert status.last_attempt["rejected_by_code"] == {"short_line": 1000}

    # The share is configurable: the same file passes a 10% limit.
    lenient = Importer(store, max_bad_share=0.10)
    assert lenient.import_file("ncic", bad_file).entries == 12_000


def test_empty_file_never_wipes_a_list_unless_forced(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    importer.import_file("ncic", ncic_file(tmp_path / "a.txt", plates("KEEP", 5)))
    empty = ncic_file(tmp_path / "empty.txt", [])  # a header and nothing else
    with pytest.raises(ImportFailedError) as failed:
        importer.import_file("ncic", empty)
    assert isinstance(failed.value.__cause__, EmptyHotlistError)
    # Every record refused is as empty as no record.
    refused = ncic_file(tmp_path / "imm.txt", [], immigration=["IMM1"])
    with pytest.raises(ImportFailedError):
        importer.import_file("ncic", refused)
    zero = tmp_path / "zero.txt"
    zero.write_bytes(b"")
    with pytest.raises(ImportFailedError):
        importer.import_file("ncic", zero)
    assert store.lookup("KEEP00003") and store.status()[NCIC].version == 1

    forced = importer.import_file("ncic", empty, force=True)
    assert (forced.version, forced.entries) == (2, 0)
    assert store.lookup("KEEP00003") == []


def test_a_much_smaller_file_is_taken_for_a_truncated_feed(
    store: HotlistStore, tmp_path: Path
) -> None:
    importer = Importer(store, max_shrink=0.5)
    importer.import_file("ncic", ncic_file(tmp_path / "a.txt", plates("FULL", 400)))
    cut = ncic_file(tmp_path / "cut.txt", plates("FULL", 150))  # 62% fewer: refused
    with pytest.raises(ImportFailedError) as failed:
        importer.import_file("ncic", cut)
    assert isinstance(failed.value.__cause__, ListShrinkError)
    assert store.lookup("FULL00399") and store.status()[NCIC].entries == 400
    assert importer.import_file("ncic", cut, force=True).entries == 150


def test_agency_list_expiry_and_effective_dates(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    path = tmp_path / "agency.csv"
    path.write_text(
        "PlateNumber;PlateState;Category;EffectiveDate;ExpiryDate\n"
        "LIVE123;CO;Stolen vehicle;;2999-12-31\n"
        "PAST123;CO;Stolen vehicle;2000-01-01;2000-01-02\n"  # expired: never stored
        "SOON123;CO;Stolen vehicle;2999-01-01;\n"  # not yet effective: stored, no match
    )
    report = importer.import_file("csv", path)
    assert (report.entries, report.skipped_expired) == (2, 1)
    now = int(time.time() * 1000)
    hits = match_plates(store, ["LIVE123", "PAST123", "SOON123"], now_ms=now)
    assert [len(h) for h in hits] == [1, 0, 0]
    # An entry stored live stops matching the moment it expires.
    expires = store.lookup("LIVE123")[0].expires_at
    assert expires is not None
    assert match_plates(store, ["LIVE123"], now_ms=expires + 1) == [[]]


def test_agency_list_with_an_undecodable_byte_imports_the_other_rows(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    # Fed: 30 good rows and one whose category holds a byte that is not UTF-8. Must come
    # out: that row rejected (not the whole import failing on the Redis write), the 30
    # stored.
    good = plates("AGY", 30)
    path = tmp_path / "agency.csv"
    path.write_bytes(b"PlateNumber;PlateState;Category\n" + b"BAD1;CO;Stolen \xe9 car\n"
                     + b"".join(f"{p};CO;Stolen vehicle\n".encode() for p in good))
    report = importer.import_file("csv", path)
    assert report.entries == 30 and report.stats.rejected == {"bad_encoding": 1}
    assert [r.line_no for r in report.stats.samples] == [2]
    assert all(store.lookup_many(good)) and store.lookup("BAD1") == []


def test_amber_alert_with_an_undecodable_byte_imports_the_other_alerts(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    # Fed: 30 good alerts and, on line 2, one whose vehicle holds a byte that is not UTF-8.
    # Must come out: that alert rejected (not the whole import failing on the Redis
    # write), the 30 stored.
    good = plates("AMB", 30)
    lines = [f'{{"alert_id": "G{i}", "plate": "{p}", "vehicle": "red Ford"}}\n'.encode()
             for i, p in enumerate(good)]
    lines.insert(1, b'{"alert_id": "BAD", "plate": "BAD1", "vehicle": "silver \xe9 Camry"}\n')
    path = tmp_path / "amber.json"
    path.write_bytes(b"".join(lines))
    report = importer.import_file("ncmec", path)
    assert report.upserted == 30 and report.stats.rejected == {"bad_encoding": 1}
    assert [r.line_no for r in report.stats.samples] == [2]
    assert all(store.lookup_many(good)) and store.lookup("BAD1") == []


def test_amber_alert_upserts_and_cancellation(
    importer: Importer, store: HotlistStore, events: MemoryUpdatePublisher, tmp_path: Path
) -> None:
    drop = tmp_path / "amber-1.json"
    drop.write_text('{"alert_id": "AMB-1", "plate": "7KQX214", "state": "CA"}\n'
                    '{"alert_id": "AMB-2", "plate": "RK828AG"}\n')
    report = importer.import_file("ncmec", drop)
    assert (report.upserted, report.version, report.entries) == (2, 1, 2)
    # Matches at once, misreads included (urgent: one extra differing character).
    assert [h.entry.entry_id for h in match_plates(store, ["7KQX219"], ["CA"])[0]] == ["AMB-1"]
    event = events.events[-1]
    assert (event.action, event.source) == ("upsert", NCMEC)
    assert sorted(e.entry_id for e in event.added or []) == ["AMB-1", "AMB-2"]

    cancel = tmp_path / "amber-2.json"
    cancel.write_text('{"alert_id": "AMB-1", "plate": "7KQX214", "status": "resolved"}\n')
    report = importer.import_file("ncmec", cancel)
    assert (report.removed, report.entries) == (1, 1)
    assert store.lookup("7KQX214") == [] and store.lookup("RK828AG")
    assert events.events[-1].removed == [{"plate": "7KQX214", "entry_id": "AMB-1"}]

    # A drop with a bad record is refused whole: no alert of it is half applied.
    bad = tmp_path / "amber-3.json"
    bad.write_text('{"alert_id": "AMB-3", "plate": "NEW333"}\n{"alert_id": "AMB-4"}\n')
    with pytest.raises(ImportFailedError):
        Importer(store, max_bad_share=0.0).import_file("ncmec", bad)
    assert store.lookup("NEW333") == []


def test_status_keeps_the_report_with_rejected_lines(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    path = ncic_file(tmp_path / "a.txt", plates("REP", 100), bad=2,
                     immigration=["IMM1"])
    importer.import_file("ncic", path)
    status = store.status()[NCIC]
    assert status.version == 1 and status.entries == 100 and status.imported_at
    report = status.report
    assert report is not None
    assert (report["rows"], report["rejected"], report["refused"]) == (103, 2, 1)
    assert report["rejected_by_code"] == {"short_line": 2}
    assert [r["line"] for r in report["rejections"]] == [103, 104]
    assert report["refused_by_reason"] == {"immigration": 1}
    assert status.last_attempt is not None and status.last_attempt["ok"] is True


# A first line cut short (NCIC: inside the plate; CCIC: before the category), then good
# records: no header in the file, so nothing may be taken for one.
FIRST_LINE_CUT_SHORT = {
    "ncic": ("V000000999CO000000020240115CUT9", "short_line"),
    "ccic": ("CUT9      C", "short_line"),
}


@pytest.mark.parametrize("fmt", ["ncic", "ccic"])
def test_a_malformed_first_line_is_rejected_not_taken_for_a_header(
    importer: Importer, store: HotlistStore, tmp_path: Path, fmt: str
) -> None:
    # Fed: a malformed first line, then 40 valid records. Must come out: the first line
    # rejected and counted like any malformed row; the 40 records all stored.
    good = plates("FIRST", 40)
    bad, code = FIRST_LINE_CUT_SHORT[fmt]
    if fmt == "ncic":
        records = [format_record("V", p, "CO", record_id=f"{i:09d}CO0000000")
                   for i, p in enumerate(good)]
    else:
        records = [ccic.format_record(p, "CO", "Stolen Vehicle") for p in good]
    path = tmp_path / f"{fmt}.txt"
    path.write_text("\n".join([bad, *records]) + "\n", encoding="latin-1")

    report = importer.import_file(fmt, path)
    stats = report.stats
    assert stats.header is None
    assert (stats.rows, stats.accepted, stats.rejected_total) == (41, 40, 1)
    assert dict(stats.rejected) == {code: 1}
    (rejection,) = stats.samples
    assert (rejection.line_no, rejection.raw) == (1, bad)
    assert "not a header" in rejection.detail  # says why it was not skipped as one
    assert report.entries == 40
    assert all(store.lookup_many(good)), "every valid row must be in the store"
    kept = store.status()[HotlistSource(fmt.upper())].report
    assert kept is not None and kept["rejected_by_code"] == {code: 1}


def test_every_import_publishes_an_update_event(
    store: HotlistStore, tmp_path: Path, kafka: str, unique_topic: Callable[[str], str]
) -> None:
    topic = unique_topic("hotlist-updates")
    publisher = KafkaUpdatePublisher(kafka, topic)
    importer = Importer(store, publisher=publisher)
    try:
        first = importer.import_file("ncic", ncic_file(tmp_path / "a.txt", plates("EVT", 20),
                                                       bad=1))
        assert first.event_published is True
        drop = tmp_path / "amber.json"
        drop.write_text('{"alert_id": "AMB-9", "plate": "7KQX214"}\n')
        importer.import_file("ncmec", drop)
        records = read_all(kafka, topic, expect=2, timeout=30)
        got = [HotlistUpdate.model_validate_json(r.value or b"") for r in records]
        assert [(e.action, e.source, e.version) for e in got] == [
            ("import", NCIC, 1), ("upsert", NCMEC, 1)]
        assert [r.key_text for r in records] == ["NCIC", "NCMEC"]
        assert got[0].entries == 20 and got[0].rejected_by_code == {"short_line": 1}
        assert got[0].added_all and len(got[0].added or []) == 20
        assert [e.plate for e in got[1].added or []] == ["7KQX214"]
    finally:
        delete_topics(kafka, [topic])


def test_new_amber_alert_alerts_the_flows_next_batch(
    store: HotlistStore, importer: Importer, tmp_path: Path
) -> None:
    """The flow caches nothing (flows.hotlist_join): the next batch after an upsert sees
    it, with no refresh to wait for. Fed: a read, then an Amber drop for its plate."""
    reads = [PlateRead(read_id="r1", plate="7KQX214", confidence=0.95,
                       char_confidences=[0.95] * 7, camera_id="cam-1", first_seen=1,
                       last_seen=2, frames_used=["f"], frame_count=1)]
    assert join_reads(store, reads) == []
    drop = tmp_path / "amber.json"
    drop.write_text('{"alert_id": "AMB-7", "plate": "7KQX214"}\n')
    importer.import_file("ncmec", drop)
    alerts = join_reads(store, reads)
    assert [a.entry.entry_id for a in alerts] == ["AMB-7"]


# --- watch mode ---------------------------------------------------------------------------


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_watcher_imports_the_newest_extract_once(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    older = ncic_file(drop / "ncic-0600.txt", plates("AM", 10))
    newer = ncic_file(drop / "ncic-1800.txt", plates("PM", 10))
    age(older, 600)
    age(newer, 300)
    watcher = FolderWatcher(drop, lambda p: importer.import_file("ncic", p), replaces=True,
                            settle_s=5)
    outcomes = {o.path.name: o.status for o in watcher.poll()}
    assert outcomes == {"ncic-0600.txt": "superseded", "ncic-1800.txt": "imported"}
    assert store.lookup("PM00001") and store.lookup("AM00001") == []
    assert watcher.poll() == []  # nothing new
    # A restarted watcher remembers what it did.
    again = FolderWatcher(drop, lambda p: importer.import_file("ncic", p), replaces=True)
    assert again.poll() == []

    # A file still being written (changed within settle_s) waits.
    fresh = ncic_file(drop / "ncic-next.txt", plates("NX", 10))
    assert watcher.poll() == []
    age(fresh, 60)
    assert [o.status for o in watcher.poll()] == ["imported"]
    assert store.lookup("NX00001") and store.status()[NCIC].version == 2


def test_watcher_does_not_retry_a_refused_file_until_it_changes(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    importer.import_file("ncic", ncic_file(tmp_path / "first.txt", plates("OK", 10)))
    drop = tmp_path / "drop"
    drop.mkdir()
    broken = ncic_file(drop / "broken.txt", plates("BR", 10), bad=10)
    age(broken, 60)
    watcher = FolderWatcher(drop, lambda p: importer.import_file("ncic", p), replaces=True)
    [outcome] = watcher.poll()
    assert outcome.status == "failed" and "malformed" in (outcome.error or "")
    assert watcher.poll() == []
    assert store.lookup("OK00001") and store.lookup("BR00001") == []
    ncic_file(broken, plates("BR", 10))  # fixed and re-dropped under the same name
    age(broken, 30)
    assert [o.status for o in watcher.poll()] == ["imported"]
    assert store.lookup("BR00001")


def test_watcher_imports_every_amber_drop_oldest_first(
    importer: Importer, store: HotlistStore, tmp_path: Path
) -> None:
    for n, (plate, status) in enumerate([("AMB111", "active"), ("AMB222", "active"),
                                          ("AMB111", "cancelled")]):
        path = tmp_path / f"amber-{n}.json"
        path.write_text(f'{{"alert_id": "A-{plate}", "plate": "{plate}", "status": "{status}"}}')
        age(path, 100 - n)
    watcher = FolderWatcher(tmp_path, lambda p: importer.import_file("ncmec", p),
                            replaces=False)
    assert [o.status for o in watcher.poll()] == ["imported"] * 3
    assert store.lookup("AMB111") == [] and store.lookup("AMB222")


def test_progress_is_reported_while_a_big_file_is_read(
    importer: Importer, tmp_path: Path
) -> None:
    # What the CLI's progress bar is fed: characters read, in steps, summing to the file.
    path = ncic_file(tmp_path / "big.txt", plates("PRG", 10_000))
    steps: list[int] = []
    importer.import_file("ncic", path, progress=steps.append)
    assert len(steps) > 3 and sum(steps) == path.stat().st_size


def _interrupt_after_line(code_name: str, needle: str, nth: int) -> Callable[..., Any]:
    """A trace function that raises KeyboardInterrupt at the first line event after the
    `nth` run of the line containing `needle` in function `code_name`: Ctrl-C landing
    between that line and the next, deterministically."""
    runs = 0
    armed = False

    def local(frame: Any, event: str, arg: Any) -> Callable[..., Any]:
        nonlocal runs, armed
        if event == "line":
            if armed:
                armed = False
                raise KeyboardInterrupt
            line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
            if needle in line:
                runs += 1
                armed = runs == nth
        return local

    def global_(frame: Any, event: str, arg: Any) -> Callable[..., Any] | None:
        return local if frame.f_code.co_name == code_name else None

    return global_


@pytest.mark.parametrize("needle", ["upserted.append(entry)", "self.store.upsert(entry)"])
def test_an_amber_import_interrupted_between_two_lines_names_each_alert_once(
    importer: Importer, store: HotlistStore, tmp_path: Path, needle: str
) -> None:
    """Fed: an NCMEC drop of 5 alerts, and Ctrl-C landing just after the third alert's
    `needle` line ran (after its write, before or after it is counted). Must hold: the
    alerts said applied are live, the one said in doubt is not among them, the count
    said added is the applied ones, and nothing after the one in doubt is live."""
    alerts = [(f"AMB-{i}", f"7KQX{i:03d}") for i in range(5)]
    path = tmp_path / "amber.json"
    path.write_text("".join(json.dumps({"alert_id": a, "plate": p, "state": "CA"}) + "\n"
                            for a, p in alerts))  # fmt: skip
    sys.settrace(_interrupt_after_line("_upsert", needle, 3))
    try:
        with pytest.raises(ImportInterruptedError) as cut:
            importer.import_file("ncmec", path)
    finally:
        sys.settrace(None)
    applied = [c.entry_id for c in cut.value.applied]
    in_doubt = cut.value.in_doubt.entry_id if cut.value.in_doubt else None
    assert cut.value.report.added == len(applied)
    assert in_doubt not in applied

    def serving(alert: str, plate: str) -> bool:
        return alert in [e.entry_id for e in store.lookup(plate)]

    assert all(serving(a, p) for a, p in alerts if a in applied)
    after = alerts[len(applied) + (in_doubt is not None):]
    assert not any(serving(a, p) for a, p in after)
