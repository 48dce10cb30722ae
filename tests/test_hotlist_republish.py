"""`alpr hotlist republish`: the serving version's hotlist-update event sent again, after
an import whose event was not published, against a real Redis and a real broker (tansu).

Each test says what it feeds and what must survive. The rule: what historical hits
search for after a republish is what the lost event would have named, never less.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import Result
from hotlist_helpers import entry
from redis.commands.core import Script
from typer.testing import CliRunner

import hotlists.store
from alpr.cli import app
from connectors.kafka import delete_topics, read_all
from hotlists.events import HotlistUpdate, KafkaUpdatePublisher, MemoryUpdatePublisher
from hotlists.import_run import INLINE_ADDED_LIMIT, Importer
from hotlists.importers.ncic import format_record
from hotlists.store import HotlistStore
from kernel.contracts import HotlistSource
from safeguards.historical import parse_hotlist_update
from sim.local_services import LocalKafka, LocalRedis, free_port

NCIC = HotlistSource.NCIC
ROOT = Path(__file__).resolve().parents[1]


def ncic_file(path: Path, plates: list[str]) -> Path:
    lines = ["NCIC LPR EXTRACT 202401150600"]
    lines += [format_record("V", p, "CO", record_id=f"{p}CO0000") for p in plates]
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def plates(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


@pytest.fixture
def url(redis_server: LocalRedis, redis_client: redis.Redis) -> str:
    """The flushed scratch db of the test Redis (redis_client flushes it)."""
    return redis_server.url_for(redis_client.connection_pool.connection_kwargs["db"])


@pytest.fixture
def store(redis_client: redis.Redis) -> HotlistStore:
    return HotlistStore(redis_client)


@pytest.fixture
def topic(kafka: str, unique_topic: Callable[[str], str],
          monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh hotlist-updates topic, the one the CLI publishes to."""
    name = unique_topic("hotlist-updates")
    monkeypatch.setenv("ALPR_TOPIC_HOTLIST_UPDATES", name)
    yield name
    delete_topics(kafka, [name])


def republish(url: str, kafka: str, source: str = "ncic", *more: str) -> Result:
    return CliRunner().invoke(app, ["hotlist", "republish", "--source", source, "--redis", url,
                                    "--kafka", kafka, *more])


def one_event(kafka: str, topic: str) -> HotlistUpdate:
    records = read_all(kafka, topic, expect=1, timeout=30, idle=1.0)
    assert len(records) == 1, records
    assert records[0].key_text == "NCIC"
    return HotlistUpdate.model_validate_json(records[0].value or b"")


def test_republish_announces_what_an_import_whose_broker_failed_added(
    store: HotlistStore, url: str, kafka: str, topic: str, tmp_path: Path
) -> None:
    """Fed: version 1 of NCIC (3 plates, imported without events), then version 2 (the 3
    plus 2 new) imported with a publisher whose broker was stopped after it connected, so
    its event was never published (the import's exit 3); then `republish --source ncic`
    with a broker up. Must survive: exit 0 and a line naming NCIC, version 2 and the 2
    entries announced; exactly one event on alpr.hotlist-updates, for version 2, whose
    added entries are the 2 new plates (not the whole list, nothing truncated), read as
    added by historical hits (parse_hotlist_update)."""
    old, new = plates("OLD", 3), plates("NEW", 2)
    Importer(store).import_file("ncic", ncic_file(tmp_path / "v1.txt", old))
    with LocalKafka() as lost:
        publisher = KafkaUpdatePublisher(lost.bootstrap, topic, timeout_s=1.0)
    report = Importer(store, publisher=publisher).import_file(
        "ncic", ncic_file(tmp_path / "v2.txt", old + new))
    assert (report.version, report.event_published, report.event_failed_on) == (
        2, False, "broker")

    result = republish(url, kafka)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("NCIC: version 2 republished: 2 entries announced"), \
        result.stdout

    event = one_event(kafka, topic)
    assert (event.action, event.source, event.version, event.entries) == ("import", NCIC, 2, 5)
    assert sorted(e.plate for e in event.added or []) == new
    assert (event.added_count, event.added_all, event.added_truncated) == (2, False, False)
    assert event.file == report.file and event.rows == 5
    added = parse_hotlist_update(event.to_json_bytes(), store)
    assert sorted(plate for _, _, plate in added.keys) == new and not added.sources


def test_a_republished_big_import_is_the_imports_own_event_truncated_alike(
    store: HotlistStore, url: str, kafka: str, topic: str, tmp_path: Path
) -> None:
    """Fed: NCIC version 1 (2 plates), then version 2 adding INLINE_ADDED_LIMIT + 1 new
    plates, its event caught in memory (what the import sent); then `republish`. Must
    survive: the published event equals the import's in every field but its id
    (`added_truncated`, no inline entries, the same count), and historical hits read the
    new plates, and only those, from the store."""
    old, new = plates("OLD", 2), plates("BIG", INLINE_ADDED_LIMIT + 1)
    Importer(store).import_file("ncic", ncic_file(tmp_path / "v1.txt", old))
    sent = MemoryUpdatePublisher()
    Importer(store, publisher=sent).import_file("ncic", ncic_file(tmp_path / "v2.txt", old + new))
    [original] = sent.events

    result = republish(url, kafka)
    assert result.exit_code == 0, result.output
    assert f"{len(new)} entries announced" in result.stdout, result.stdout
    assert "too many to carry" in result.stdout, result.stdout

    event = one_event(kafka, topic)
    assert event.event_id != original.event_id
    assert event.model_dump(exclude={"event_id"}) == original.model_dump(exclude={"event_id"})
    assert event.added_truncated and event.added is None and event.added_count == len(new)
    added = parse_hotlist_update(event.to_json_bytes(), store)
    assert sorted(plate for _, _, plate in added.keys) == new and not added.sources


def test_without_the_versions_report_every_live_entry_is_announced(
    store: HotlistStore, redis_client: redis.Redis, url: str, kafka: str, topic: str,
    tmp_path: Path,
) -> None:
    """Fed: NCIC version 1 (2 plates), version 2 (the 2 plus 1 new) whose saved import
    report is then deleted (as when Redis died right after the switch-over). Must
    survive: the event announces all 3 live entries (`added_all`, wider than the lost
    event, never narrower) and the output says why."""
    old = plates("OLD", 2)
    Importer(store).import_file("ncic", ncic_file(tmp_path / "v1.txt", old))
    Importer(store).import_file("ncic", ncic_file(tmp_path / "v2.txt", [*old, "NEW0000"]))
    redis_client.hdel("alpr:hl:NCIC:v2:meta", "report")

    result = republish(url, kafka)
    assert result.exit_code == 0, result.output
    assert "3 entries announced" in result.stdout and "report was not saved" in result.stdout
    event = one_event(kafka, topic)
    assert event.version == 2 and event.added_all
    assert sorted(e.plate for e in event.added or []) == sorted([*old, "NEW0000"])


def test_republish_of_a_source_with_no_live_version_is_refused(url: str) -> None:
    """Fed: `republish --source ccic` against an empty Redis (and a broker address where
    nothing listens). Must survive: exit 1 at once, one line saying CCIC has no live
    version; the broker is never asked."""
    result = republish(url, f"127.0.0.1:{free_port()}", "ccic")
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        "republish refused: CCIC has no live version: nothing to republish (import a list "
        "first)"], result.stderr
    assert result.stdout == ""


def test_republish_with_redis_down_is_one_clear_line() -> None:
    """Fed: `republish --source ncic` with nothing listening at the Redis address. Must
    survive: exit 2 and exactly one `error: Redis unavailable: ...` line, no traceback."""
    result = republish(f"redis://127.0.0.1:{free_port()}/0", f"127.0.0.1:{free_port()}")
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Redis unavailable: "), lines
    assert "Traceback" not in result.output


def test_republish_with_the_broker_down_exits_3(
    store: HotlistStore, url: str, tmp_path: Path
) -> None:
    """Fed: a live NCIC version 1, then `republish --source ncic --timeout 1` with nothing
    listening at the broker address. Must survive: exit 3, one `error:` line saying Kafka
    did not take the event and to run the republish again; nothing on stdout."""
    Importer(store).import_file("ncic", ncic_file(tmp_path / "v1.txt", plates("OLD", 2)))
    result = republish(url, f"127.0.0.1:{free_port()}", "ncic", "--timeout", "1")
    assert result.exit_code == 3, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: Kafka did not take the hotlist-update event of NCIC "
                           "version 1: "), line
    assert "run `alpr hotlist republish --source ncic` again" in line, line
    assert result.stdout == ""


# The broker's time to acknowledge (alpr hotlist import, watch, republish): 15 s unless set.
EVENT_TIMEOUT_S = 2


def test_an_import_that_finds_the_broker_down_says_to_republish_later(
    store: HotlistStore, url: str, kafka: str, topic: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fed: `alpr hotlist import --source ncic` of 2 plates with nothing listening at the
    broker address and ALPR_HOTLIST_EVENT_TIMEOUT_S=2; then what its message advises: the
    import with --no-events, and `republish --source ncic` once a broker answers. Must
    survive: exit 2 within a few seconds (the configured timeout, not the 15 s default),
    before any list changed (NCIC has no version), one line saying Kafka cannot be
    reached and nothing was imported, naming both `--no-events` and `alpr hotlist
    republish --source ncic` (before, only --no-events: the event was then never
    published); the advice works: the republished event names the 2 plates."""
    monkeypatch.setenv("ALPR_HOTLIST_EVENT_TIMEOUT_S", str(EVENT_TIMEOUT_S))
    file = ncic_file(tmp_path / "v1.txt", plates("NEW", 2))
    args = ["hotlist", "import", str(file), "--source", "ncic", "--redis", url]
    started = time.monotonic()
    result = CliRunner().invoke(app, [*args, "--kafka", f"127.0.0.1:{free_port()}"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("cannot reach Kafka for hotlist-update events ("), line
    assert "nothing was imported" in line and "--no-events" in line, line
    assert "then run `alpr hotlist republish --source ncic` once Kafka answers" in line, line
    assert elapsed < 4 * EVENT_TIMEOUT_S, f"took {elapsed:.1f} s"
    assert store.status().get(NCIC) is None

    assert CliRunner().invoke(app, [*args, "--no-events"]).exit_code == 0
    assert republish(url, kafka).exit_code == 0
    assert sorted(e.plate for e in one_event(kafka, topic).added or []) == plates("NEW", 2)


@contextlib.contextmanager
def broker_stopped_after_the_switch_over(
    monkeypatch: pytest.MonkeyPatch, script: str = hotlists.store._FLIP
) -> Iterator[LocalKafka]:
    """A tansu broker of its own, stopped the moment the import's switch-over script (or
    `script`, e.g. an NCMEC cancellation's _REMOVE) has answered (so the import is live
    and its event cannot be published); checked stopped on the way out."""
    call = Script.__call__
    with LocalKafka() as doomed:

        def flip_then_stop_broker(self: Script, keys: Any = None, args: Any = None,
                                  client: Any = None) -> Any:
            reply = call(self, keys, args, client)
            if self.script == script:
                doomed.stop()
            return reply

        monkeypatch.setattr(Script, "__call__", flip_then_stop_broker)
        try:
            yield doomed
        finally:
            monkeypatch.setattr(Script, "__call__", call)
        assert not doomed.running


def test_an_import_whose_broker_dies_after_the_switch_over_exits_3_and_the_list_is_live(
    store: HotlistStore, url: str, kafka: str, topic: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fed: NCIC version 1 (3 plates, imported without events), then `alpr hotlist import`
    of version 2 (the 3 plus 2 new) publishing to a tansu broker of its own that is
    stopped the moment the switch-over script has answered (the list is live, its event
    not yet sent), with ALPR_HOTLIST_EVENT_TIMEOUT_S=2. Must survive: exit 3 within a few
    seconds (the configured timeout, not the fixed 15 s it was); stdout says version 2
    is live; stderr one WARNING line saying the event was not published and pointing at
    `alpr hotlist republish --source ncic`, not at the import, and nothing else (before,
    the importer's own `error:` log line about it came first); Redis serves version 2
    (its new plates match, the old list is gone); the advised republish, on a broker
    that answers, publishes the event naming the 2 new plates."""
    monkeypatch.setenv("ALPR_HOTLIST_EVENT_TIMEOUT_S", str(EVENT_TIMEOUT_S))
    old, new = plates("OLD", 3), plates("NEW", 2)
    Importer(store).import_file("ncic", ncic_file(tmp_path / "v1.txt", old))
    with broker_stopped_after_the_switch_over(monkeypatch) as doomed:
        started = time.monotonic()
        result = CliRunner().invoke(app, [
            "hotlist", "import", str(ncic_file(tmp_path / "v2.txt", old + new)),
            "--source", "ncic", "--redis", url, "--kafka", doomed.bootstrap])
        elapsed = time.monotonic() - started
    assert result.exit_code == 3, result.output
    assert elapsed < 4 * EVENT_TIMEOUT_S, f"took {elapsed:.1f} s"
    assert result.stdout.startswith("NCIC: version 2 live with 5 entries (2 new plates;"), \
        result.stdout
    # Said once: the importer's own log line about it is gone (debug only).
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("WARNING: hotlist-update event not published: "), line
    assert "version 2 is live" in line, line
    assert "until `alpr hotlist republish --source ncic` runs once Kafka is back" in line, line
    assert store.status()[NCIC].version == 2
    assert [e.plate for e in store.lookup("NEW0001")] == ["NEW0001"]

    assert republish(url, kafka).exit_code == 0
    event = one_event(kafka, topic)
    assert event.version == 2 and sorted(e.plate for e in event.added or []) == new


def _amber_drop(path: Path, n: int) -> list[str]:
    """A drop of n Amber alerts AMB-00000.. (plates AM00000..); returns the plates."""
    alerts = [(f"AMB-{i:05d}", f"AM{i:05d}") for i in range(n)]
    path.write_text("".join(json.dumps({"alert_id": a, "plate": p, "state": "CA"}) + "\n"
                            for a, p in alerts))
    return [p for _, p in alerts]


def _import_process(file: Path, url: str, bootstrap: str) -> subprocess.Popen[str]:
    """`alpr hotlist import --source ncmec` in a real process: its stderr is all an
    operator sees, librdkafka's own lines included."""
    return subprocess.Popen(
        [sys.executable, "-m", "alpr.cli", "hotlist", "import", str(file), "--source",
         "ncmec", "--redis", url, "--kafka", bootstrap], cwd=ROOT,
        env={**os.environ, "ALPR_HOTLIST_EVENT_TIMEOUT_S": str(EVENT_TIMEOUT_S)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_import_with_no_broker_listening_says_so_once(
    store: HotlistStore, url: str, tmp_path: Path,
) -> None:
    """Fed: `alpr hotlist import --source ncmec` of 2 Amber alerts, in a real process,
    with nothing listening at the broker address. Must survive: exit 2, nothing imported;
    stderr one line, the one telling the operator what to do (--no-events, then `alpr
    hotlist republish --source ncmec`): before, librdkafka's own "Connect ... failed"
    lines came first, some forty in two seconds."""
    file = tmp_path / "amber.json"
    _amber_drop(file, 2)
    proc = _import_process(file, url, f"127.0.0.1:{free_port()}")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("cannot reach Kafka for hotlist-update events ("), line
    assert "then run `alpr hotlist republish --source ncmec` once Kafka answers" in line, line
    assert store.status().get(HotlistSource.NCMEC) is None


def test_a_broker_gone_before_the_event_is_said_once_with_what_to_do(
    store: HotlistStore, url: str, tmp_path: Path,
) -> None:
    """Fed: `alpr hotlist import --source ncmec` of 8,000 Amber alerts, in a real
    process, publishing to a tansu broker of its own that is stopped once two alerts are
    live, so its event goes to an address where nothing listens any more. Must survive:
    exit 3, stdout saying the 8,000 alerts were added (they serve); stderr one line, the
    WARNING that the event was not published and to run `alpr hotlist republish --source
    ncmec` once Kafka is back. Before, the importer's own `error: hotlist NCMEC: update
    event not published` line came first, and librdkafka's "Connect ... failed" lines."""
    file = tmp_path / "amber.json"
    drop = _amber_drop(file, 8000)
    with LocalKafka() as doomed:
        proc = _import_process(file, url, doomed.bootstrap)
        try:
            deadline = time.monotonic() + 60
            while (status := store.status().get(HotlistSource.NCMEC)) is None \
                    or status.entries < 2:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the import never added an alert"
                time.sleep(0.005)
            doomed.stop()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 3, err
    assert out.startswith("NCMEC: 8000 alert(s) added, 0 cancelled; version 1 now 8000 "
                          "entries"), out
    [line] = err.strip().splitlines()
    assert line.startswith("WARNING: hotlist-update event not published: "), line
    assert "until `alpr hotlist republish --source ncmec` runs once Kafka is back" in line, \
        line
    assert store.status()[HotlistSource.NCMEC].entries == 8000
    assert store.lookup(drop[-1]) and store.lookup(drop[0])


def test_a_watched_import_whose_broker_dies_says_to_republish(
    store: HotlistStore, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fed: `alpr hotlist watch --once` of a folder holding an NCIC list of 3 plates,
    publishing to a tansu broker of its own that is stopped the moment the switch-over
    script has answered, with ALPR_HOTLIST_EVENT_TIMEOUT_S=2. Must survive: the file is
    imported (version 1 serves it, and it is not retried) and the watcher's line for it
    says the event was not published and to run `alpr hotlist republish --source ncic`
    once Kafka answers (before, it said only "imported": the warning came from the
    importer's own log line, now debug only so that `import` says it once); stderr (the
    watcher's log) not saying it again."""
    monkeypatch.setenv("ALPR_HOTLIST_EVENT_TIMEOUT_S", str(EVENT_TIMEOUT_S))
    drop = tmp_path / "drop"
    drop.mkdir()
    file = ncic_file(drop / "ncic-0600.txt", plates("WAT", 3))
    then = time.time() - 60
    os.utime(file, (then, then))
    with broker_stopped_after_the_switch_over(monkeypatch) as doomed:
        args = ["hotlist", "watch", str(drop), "-s", "ncic", "--once", "--redis", url,
                "--kafka", doomed.bootstrap]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith("ncic-0600.txt: imported (hotlist-update event not published: "
                           "EventPublishError: "), line
    assert line.endswith("; run `alpr hotlist republish --source ncic` once Kafka "
                         "answers)"), line
    assert "not published" not in result.stderr, result.stderr  # said once, on its line
    assert store.status()[NCIC].version == 1
    assert [e.plate for e in store.lookup("WAT0001")] == ["WAT0001"]


NCMEC = HotlistSource.NCMEC


def _amber_cancelling(path: Path, monkeypatch: pytest.MonkeyPatch, url: str,
                      store: HotlistStore) -> Result:
    """NCMEC serving AMB-0 (7KQX210) and AMB-9 (7KQX219); then `alpr hotlist import -s
    ncmec` of a drop adding AMB-1 (7KQX211) and cancelling AMB-0, its broker stopped once
    the cancellation has answered (ALPR_HOTLIST_EVENT_TIMEOUT_S=2)."""
    monkeypatch.setenv("ALPR_HOTLIST_EVENT_TIMEOUT_S", str(EVENT_TIMEOUT_S))
    for alert, plate in [("AMB-0", "7KQX210"), ("AMB-9", "7KQX219")]:
        store.upsert(entry(plate, alert, NCMEC, priority=1))
    path.write_text(json.dumps({"alert_id": "AMB-1", "plate": "7KQX211", "state": "CA"})
                    + "\n" + json.dumps({"alert_id": "AMB-0", "plate": "7KQX210",
                                         "status": "cancelled"}) + "\n")
    with broker_stopped_after_the_switch_over(monkeypatch, hotlists.store._REMOVE) as doomed:
        return CliRunner().invoke(app, ["hotlist", "import", str(path), "--source", "ncmec",
                                        "--redis", url, "--kafka", doomed.bootstrap])


def test_republish_of_ncmec_announces_the_cancellations_of_an_unpublished_import(
    store: HotlistStore, url: str, kafka: str, topic: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fed: NCMEC serving AMB-0 and AMB-9; an import adding AMB-1 and cancelling AMB-0
    whose broker is stopped once the cancellation answered (exit 3, event not published);
    then `alpr hotlist republish --source ncmec` with a broker up. Must survive: exit 0;
    one event whose `removed` names AMB-0 (7KQX210), so consumers drop the cancelled
    Amber alert, and whose added are the live AMB-1 and AMB-9; stdout says the
    cancellation was announced. Before, `removed` was empty: caches kept AMB-0."""
    result = _amber_cancelling(tmp_path / "amber.json", monkeypatch, url, store)
    assert result.exit_code == 3, result.output
    assert store.lookup("7KQX210") == []

    again = republish(url, kafka, "ncmec")
    assert again.exit_code == 0, again.output
    [record] = read_all(kafka, topic, expect=1, timeout=30, idle=1.0)
    event = HotlistUpdate.model_validate_json(record.value or b"")
    assert (event.action, event.source) == ("upsert", NCMEC)
    assert event.removed == [{"plate": "7KQX210", "entry_id": "AMB-0"}], event.removed
    assert sorted(e.entry_id for e in event.added or []) == ["AMB-1", "AMB-9"]
    assert "1 cancellation(s) of the last import as removed (AMB-0)" in again.stdout, \
        again.stdout
    assert again.stderr == "", again.stderr


def test_republish_of_ncmec_says_when_the_imports_cancellations_are_lost(
    store: HotlistStore, url: str, kafka: str, topic: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fed: as above (AMB-0 cancelled by an import whose event was not published, exit
    3), then a refused NCMEC import (every record malformed: its failed attempt replaces
    the first import's report), then `republish --source ncmec` with a broker up. Must
    survive: the event is published (exit 0) but stderr says, in one WARNING line, that
    the last import's cancellations are not in it and to import that file again. Before,
    it said nothing: an event removing nothing, as if nothing had been cancelled."""
    assert _amber_cancelling(tmp_path / "amber.json", monkeypatch, url, store).exit_code == 3
    bad = tmp_path / "bad.json"
    bad.write_text("not json\n" * 3)
    refused = CliRunner().invoke(app, ["hotlist", "import", str(bad), "--source", "ncmec",
                                       "--redis", url, "--no-events"])
    assert refused.exit_code == 1, refused.output

    again = republish(url, kafka, "ncmec")
    assert again.exit_code == 0, again.output
    [line] = again.stderr.strip().splitlines()
    assert line.startswith("WARNING: the cancellations of the last NCMEC import are not in "
                           "this event: the last attempt recorded failed"), line
    assert "import that file again" in line, line
    [record] = read_all(kafka, topic, expect=1, timeout=30, idle=1.0)
    assert HotlistUpdate.model_validate_json(record.value or b"").removed == []
