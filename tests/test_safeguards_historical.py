"""Rule 7: a hotlist entry added now is checked against the retained reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from alpr.config import Topics
from alpr.contracts import HotlistSource
from connectors.kafka import KafkaRecord, delete_topics, ensure_topics, make_producer, read_all
from connectors.local_services import LocalRedis
from flows.hotlist_join import alert_id
from safeguards.alerts import AlertStore
from safeguards.historical import historical_alerts, parse_hotlist_update
from safeguards.ingest import handle_hotlist_updates, run_hotlist_updates
from safeguards.policy import DAY_S, load_policy
from safeguards.retention import ReadStore, now_ms
from safeguards.testing import make_alert, make_entry, make_read


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedis]:
    with LocalRedis() as srv:  # no audit here: no AOF needed
        yield srv


@pytest.fixture
def client(server: LocalRedis) -> Iterator[redis.Redis]:
    c = server.client()
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def reads(client: redis.Redis) -> ReadStore:
    store = ReadStore(client)
    now = now_ms()
    store.put_many([
        make_read("HIS123", camera="cam-1", at_ms=now - 5 * DAY_S * 1000),
        make_read("HIS123", camera="cam-2", at_ms=now - 3_600_000),
        make_read("HIS123", camera="cam-3", at_ms=now - 60_000, alertable=False),
        make_read("OTH456", camera="cam-1", at_ms=now - 60_000),
    ])
    return store


@pytest.fixture
def alerts(client: redis.Redis) -> AlertStore:
    return AlertStore(client)


def test_added_entry_finds_past_reads(reads: ReadStore) -> None:
    entry = make_entry("HIS123", "NCIC-1")
    found = historical_alerts(reads, [entry])
    assert sorted(a.read.camera_id for a in found) == ["cam-1", "cam-2"]  # alertable only
    for alert in found:
        assert alert.historical is True
        assert alert.alert_id == alert_id(alert.read, entry)  # same id as real time
        assert alert.entry == entry and alert.match.read_plate == "HIS123"


def test_same_update_twice_gives_no_duplicates(reads: ReadStore) -> None:
    entry = make_entry("HIS123", "NCIC-1")
    assert len(historical_alerts(reads, [entry])) == 2
    assert historical_alerts(reads, [entry]) == []
    # A different entry for the same plate is a different hit.
    assert len(historical_alerts(reads, [make_entry("HIS123", "CCIC-9",
                                                    source=HotlistSource.CCIC)])) == 2


def test_alert_already_raised_in_real_time_is_not_repeated(reads: ReadStore,
                                                           alerts: AlertStore) -> None:
    entry = make_entry("HIS123", "NCIC-1")
    recent = next(r for r in reads.reads_for_plate("HIS123") if r.alertable)
    alerts.put(make_alert(recent, entry))
    found = historical_alerts(reads, [entry], alert_store=alerts)
    assert len(found) == 1 and found[0].read.read_id != recent.read_id


def test_expired_and_prohibited_entries_produce_nothing(reads: ReadStore) -> None:
    expired = make_entry("HIS123", "NCIC-2", expires_at=now_ms() - 1)
    immigration = make_entry("HIS123", "NCIC-3", reason="Immigration Violator")
    assert historical_alerts(reads, [expired, immigration], policy=load_policy()) == []


def test_reads_past_retention_are_not_matched(client: redis.Redis) -> None:
    clock_now = [now_ms()]
    store = ReadStore(client, 100, clock=lambda: clock_now[0])
    store.put(make_read("AGE123", at_ms=clock_now[0]))
    clock_now[0] += 101_000
    assert historical_alerts(store, [make_entry("AGE123")]) == []


def test_parse_hotlist_update_shapes() -> None:
    entry = make_entry("ABC123", "N1").model_dump(mode="json")
    assert [e.plate for e in parse_hotlist_update(json.dumps({"added": [entry]}))] == ["ABC123"]
    no_source = {k: v for k, v in entry.items() if k != "source"}
    parsed = parse_hotlist_update(json.dumps({"source": "CCIC", "entries": [no_source],
                                              "action": "upsert"}))
    assert parsed[0].source == HotlistSource.CCIC
    assert parse_hotlist_update(json.dumps({"removed": [entry]})) == []
    assert parse_hotlist_update(json.dumps({"entries": [entry], "action": "remove"})) == []
    assert parse_hotlist_update(b"not json") == []
    assert parse_hotlist_update(json.dumps({"added": [{"plate": "X"}, entry]}))[0].plate == (
        "ABC123")


def test_hotlist_update_records_store_historical_alerts(reads: ReadStore,
                                                        alerts: AlertStore) -> None:
    event = json.dumps({"source": "NCIC", "added": [
        make_entry("HIS123", "NCIC-5").model_dump(mode="json")]}).encode()
    record = KafkaRecord(topic="alpr.hotlist-updates", partition=0, offset=0, key=None,
                         value=event)
    produced = handle_hotlist_updates([record, record], reads=reads, alerts=alerts)
    assert len(produced) == 2
    assert all(alerts.get(a.alert_id).historical for a in produced)
    assert alerts.count(0, now_ms(), historical_only=True) == 2


def test_alerts_whose_delivery_failed_are_produced_again(reads: ReadStore,
                                                        alerts: AlertStore) -> None:
    event = json.dumps({"added": [make_entry("HIS123", "NCIC-6").model_dump(mode="json")]})
    record = KafkaRecord(topic="u", partition=0, offset=0, key=None, value=event.encode())

    def broker_down(_: object) -> None:
        raise RuntimeError("broker down")

    with pytest.raises(RuntimeError):
        handle_hotlist_updates([record], reads=reads, alerts=alerts, publish=broker_down)
    delivered: list = []
    assert len(handle_hotlist_updates([record], reads=reads, alerts=alerts,
                                      publish=delivered.extend)) == 2
    assert len(delivered) == 2
    assert handle_hotlist_updates([record], reads=reads, alerts=alerts) == []


def test_hotlist_updates_from_kafka_publish_historical_alerts(
    kafka: str, reads: ReadStore, alerts: AlertStore
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(hotlist_updates=f"test.hl.{tag}", alerts=f"test.alerts.{tag}")
    ensure_topics(kafka, [topics.hotlist_updates, topics.alerts], partitions=1)
    try:
        event = {"source": "NCIC", "added": [make_entry("HIS123", "N7").model_dump(mode="json")]}
        producer = make_producer(kafka)
        for _ in range(2):  # the same update twice
            producer.produce(topics.hotlist_updates, value=json.dumps(event).encode())
        assert producer.flush(15) == 0
        sent = run_hotlist_updates(kafka, reads=reads, alerts=alerts, topics=topics,
                                   group_id=f"test-{tag}", idle_exit_s=1.5)
        assert sent == 2
        published = read_all(kafka, topics.alerts, expect=2, timeout=15)
        assert len({r.json()["alert_id"] for r in published}) == 2
        assert all(r.json()["historical"] for r in published)
    finally:
        delete_topics(kafka, [topics.hotlist_updates, topics.alerts])
