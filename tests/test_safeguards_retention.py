"""Rule 1 (retention) and the ingest consumer, against a real Redis and a real broker."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient
from safeguard_builders import build_stack, make_alert, make_entry, make_read
from typer.testing import CliRunner

from alpr.cli import app
from connectors.kafka import KafkaRecord, delete_topics, ensure_topics, make_producer
from kernel.settings import Topics
from safeguards.alerts import AlertStore
from safeguards.api import create_app
from safeguards.ingest import ingest_records, run_ingest
from safeguards.patterns import PlatePattern
from safeguards.policy import DAY_S, PolicyError, default_policy_path, load_policy
from safeguards.retention import (
    ReadStore,
    RetentionError,
    ensure_retention_topics,
    now_ms,
    topic_retention_config,
    topic_retention_ms,
)
from safeguards.search import SearchRequest
from sim.local_services import LocalRedis

THIRTY_DAYS_MS = 30 * DAY_S * 1000


class Clock:
    """A settable clock for the stores (Redis keeps its own, real, time)."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


def all_keys(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(match="*", count=1000))


def mentions(client: redis.Redis, needles: list[str]) -> list[str]:
    """Keys whose name or content mentions any of `needles` (a read id, a plate)."""
    found = []
    for key in all_keys(client):
        kind = client.type(key).decode()
        if kind == "string":
            content = [client.get(key) or b""]
        elif kind == "zset":
            content = [m for m, _ in client.zscan_iter(key)]
        elif kind == "hash":
            content = [v for kv in client.hgetall(key).items() for v in kv]
        elif kind == "set":
            content = list(client.smembers(key))
        elif kind == "stream":
            content = [v for _, fields in client.xrange(key) for v in fields.values()]
        else:
            content = []
        blob = key + b"".join(content)
        if any(n.encode() in blob for n in needles):
            found.append(key.decode())
    return found


# --- the 30-day limit ------------------------------------------------------------------


def test_policy_refuses_retention_above_30_days_unless_it_says_otherwise() -> None:
    assert load_policy().retention_days == 30
    with pytest.raises(PolicyError, match="exceeds the 30-day limit"):
        load_policy(retention_days=31)
    with pytest.raises(PolicyError, match="retention_justification"):
        load_policy(retention_days=31, allow_retention_above_30_days=True)
    allowed = load_policy(retention_days=45, allow_retention_above_30_days=True,
                          retention_justification="Council resolution 2026-17 allows 45 days")
    assert allowed.max_retention_s == 45 * DAY_S


def test_store_refuses_retention_above_what_the_policy_allows(client: redis.Redis) -> None:
    with pytest.raises(RetentionError):
        ReadStore(client, 31 * DAY_S)
    with pytest.raises(RetentionError):
        ReadStore.from_policy(client, load_policy().model_copy(update={"retention_days": 31}))
    with pytest.raises(RetentionError):
        AlertStore(client, 31 * DAY_S)
    allowed = load_policy(retention_days=45, allow_retention_above_30_days=True,
                          retention_justification="Council resolution 2026-17 allows 45 days")
    assert ReadStore.from_policy(client, allowed).retention_ms == 45 * DAY_S * 1000


@pytest.mark.parametrize("store", [ReadStore, AlertStore])
def test_stores_refuse_no_retention_and_empty_buckets(client: redis.Redis, store: type) -> None:
    """Fed: retention 0 or an index bucket of 0 s. Out: refused when the store is made,
    not a division by zero at the first write."""
    with pytest.raises(RetentionError):
        store(client, 0)
    with pytest.raises(ValueError, match="bucket_s"):
        store(client, DAY_S, bucket_s=0)


def test_every_key_of_a_read_expires_with_capture_plus_retention(client: redis.Redis) -> None:
    store = ReadStore(client, 30 * DAY_S, bucket_s=3600)
    captured = now_ms() - 10 * DAY_S * 1000
    read = make_read("ABC123", camera="cam-7", at_ms=captured)
    assert store.put(read)
    keys = all_keys(client)
    assert len(keys) == 6  # the read + time, plates, plate, camera, cameras indexes
    read_expiry = client.pexpiretime(store.read_key(read.read_id))
    assert read_expiry == captured + THIRTY_DAYS_MS
    for key in keys:
        expiry = client.pexpiretime(key)
        # Every index expires too, at most one bucket after the read.
        assert read_expiry <= expiry <= read_expiry + 3600_000, key


def test_alert_expires_with_its_read(client: redis.Redis) -> None:
    alerts = AlertStore(client, 30 * DAY_S)
    captured = now_ms() - 29 * DAY_S * 1000
    alert = make_alert(make_read("ABC123", at_ms=captured), make_entry("ABC123"))
    assert alerts.put(alert)
    for key in all_keys(client):
        assert 0 < client.pexpiretime(key) <= captured + THIRTY_DAYS_MS + 3600_000


def test_read_already_past_retention_is_never_stored(client: redis.Redis) -> None:
    store = ReadStore(client, 30 * DAY_S)
    old = make_read("OLD123", at_ms=now_ms() - THIRTY_DAYS_MS - 1000)
    assert not store.put(old)
    assert all_keys(client) == []


def test_camera_clock_in_the_future_cannot_stretch_retention(client: redis.Redis) -> None:
    store = ReadStore(client, 30 * DAY_S)
    future = make_read("FUT123", at_ms=now_ms() + 5 * DAY_S * 1000)
    store.put(future)
    assert client.pexpiretime(store.read_key(future.read_id)) <= now_ms() + THIRTY_DAYS_MS


def test_index_members_of_an_expired_read_find_nothing(client: redis.Redis) -> None:
    """The indexes outlive a read by up to one bucket: queries must not see it then."""
    clock = Clock()
    store = ReadStore(client, 100, bucket_s=3600, clock=clock)
    read = make_read("GHO123", camera="cam-9", at_ms=clock.now)
    store.put(read)
    assert [r.read_id for r in store.find(PlatePattern.parse("GHO123")).reads] == [read.read_id]
    clock.now += 100_000  # retention over for the store; Redis has not expired anything yet
    assert client.exists(store.read_key(read.read_id))  # still in Redis...
    assert store.find(PlatePattern.parse("GHO123")).reads == []  # ...but nothing finds it
    assert store.find(PlatePattern.parse("GHO*")).reads == []
    assert store.find(PlatePattern.parse("GHO123"), cameras=["cam-9"]).reads == []
    assert store.count_reads() == 0
    assert store.cameras() == set()


def test_alert_index_members_of_an_expired_alert_count_nothing(client: redis.Redis) -> None:
    clock = Clock()
    alerts = AlertStore(client, 100, bucket_s=3600, clock=clock)
    read = make_read("GHO123", at_ms=clock.now)
    alerts.put_many([make_alert(read, make_entry("GHO123", "E1")),
                     make_alert(read, make_entry("GHO123", "E2"), historical=True)])
    assert (alerts.count(0, clock.now), alerts.count(0, clock.now, historical_only=True)) == (
        2, 1)
    clock.now += 100_000  # past retention; the index keys are still in Redis
    assert (alerts.count(0, clock.now), alerts.count(0, clock.now, historical_only=True)) == (
        0, 0)


def test_expired_read_disappears_from_storage_indexes_and_search(data_server: LocalRedis,
                                                                 data_client: redis.Redis,
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch, server: LocalRedis, tmp_path: Path
) -> None:
    # A policy file with retention in seconds, used by the services, the API and the CLI.
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(default_policy_path().read_text().replace(
        "\nretention_days: 30\n", f"\nretention_days: {2 / 86_400!r}\n"))
    policy = load_policy(policy_file)
    assert policy.retention_s == 2
    stack = build_stack(data_client, client, policy=policy, bucket_s=1)
    sg = stack.sg
    read = make_read("EXP123", camera="cam-x")
    keep_out = make_read("EXP999", camera="cam-x")  # same camera, other plate
    sg.reads.put_many([read, keep_out])
    alert = make_alert(read, make_entry("EXP123", "NCIC-EXP"))
    sg.alerts.put(alert)
    http = TestClient(create_app(sg))
    body = {"plate": "EXP1*", "case_number": "2025-000111", "offence": "robbery",
            "reason": "Armed robbery, suspect vehicle seen on camera"}
    for name, value in (("REDIS_URL", data_server.url), ("AUDIT_REDIS_URL", server.url),
                        ("HOTLIST_REDIS_URL", server.url),
                        ("POLICY_FILE", str(policy_file)), ("INDEX_BUCKET_S", "1")):
        monkeypatch.setenv(f"ALPR_SG_{name}", value)
    cli = ["search", "--plate", body["plate"], "--case", body["case_number"], "--offence",
           body["offence"], "--reason", body["reason"], "--token-file", "-", "--json"]

    def found() -> tuple[int, int, int]:
        res = http.post("/search", json=body, headers=stack.auth("det"))
        assert res.status_code == 200, res.text
        out = CliRunner().invoke(app, cli, input=stack.tokens["det"])
        assert out.exit_code == 0, out.output
        return (sg.search.search(stack.tokens["det"], SearchRequest(**body)).count,
                res.json()["count"], json.loads(out.stdout)["count"])

    assert found() == (1, 1, 1)
    report = sg.transparency.report()
    assert (report.vehicles_detected_last_30_days, report.hotlist_hits_last_30_days,
            report.cameras) == (2, 1, 1)
    time.sleep(2.2)
    assert sg.reads.get(read.read_id) is None and sg.alerts.get(alert.alert_id) is None
    assert sg.reads.find(PlatePattern.parse("EXP123")).reads == []
    assert sg.reads.count_reads() == 0
    assert found() == (0, 0, 0)  # the service, POST /search and `alpr search`
    report = sg.transparency.report()
    assert (report.vehicles_detected_last_30_days, report.hotlist_hits_last_30_days,
            report.cameras) == (0, 0, 0)
    time.sleep(1.3)  # + one bucket: every index key is gone as well
    # Nothing anywhere in Redis names the read, its alert, its plate or its camera any
    # more (the audit trail holds the searches' pattern "EXP1*", not the plate).
    assert mentions(client, [read.read_id, alert.alert_id, "EXP123", "cam-x"]) == []
    assert not [k for k in all_keys(client)
                if k.startswith((b"alpr:sg:read", b"alpr:sg:rb", b"alpr:sg:a"))
                and not k.startswith((b"alpr:sg:agenc", b"alpr:sg:audit"))]
    # The audit trail of those searches is not personal data under the 30-day rule: kept.
    searches = [r for r in sg.audit.records() if r.action == "search"]
    assert len(searches) == 6 and sg.audit.verify().ok
    assert client.pttl(sg.audit.stream_key) == -1


# --- Kafka topic retention -------------------------------------------------------------


def test_reads_topic_config_is_30_days() -> None:
    assert topic_retention_config(load_policy()) == {"retention.ms": str(THIRTY_DAYS_MS)}


def test_reads_topic_created_with_retention_and_lowered_if_longer(
    kafka: str, unique_topic: Callable[[str], str]
) -> None:
    fresh, too_long = unique_topic("reads"), unique_topic("reads")
    ensure_topics(kafka, [too_long], partitions=1, config={"retention.ms": "-1"})
    try:
        result = ensure_retention_topics(kafka, load_policy(), [fresh, too_long], partitions=1)
        assert result == {fresh: THIRTY_DAYS_MS, too_long: THIRTY_DAYS_MS}
    finally:
        delete_topics(kafka, [fresh, too_long])


def test_retention_topics_covers_frames_and_dead_letters(
    kafka: str, unique_topic: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fed: `alpr retention topics` with the four plate-carrying topics renamed, the dead
    letters already made with infinite retention. Must survive: frames, reads, alerts and
    dead letters all end at the policy's 30 days (the dead letters lowered)."""
    names = {kind: unique_topic(kind) for kind in ("frames", "reads", "alerts", "dead")}
    ensure_topics(kafka, [names["dead"]], partitions=1, config={"retention.ms": "-1"})
    for kind, env in (("frames", "FRAMES"), ("reads", "READS"), ("alerts", "ALERTS"),
                      ("dead", "DEAD_LETTERS")):
        monkeypatch.setenv(f"ALPR_TOPIC_{env}", names[kind])
    try:
        result = CliRunner().invoke(app, ["retention", "topics", "--kafka", kafka])
        assert result.exit_code == 0, result.output
        admin = AdminClient({"bootstrap.servers": kafka})
        assert topic_retention_ms(admin, list(names.values()), 15) == {
            name: THIRTY_DAYS_MS for name in names.values()}
    finally:
        delete_topics(kafka, list(names.values()))


# --- ingest ----------------------------------------------------------------------------


def _record(topic: str, value: bytes, offset: int = 0) -> KafkaRecord:
    return KafkaRecord(topic=topic, partition=0, offset=offset, key=b"cam-1", value=value)


def test_ingest_records_stores_reads_and_alerts_and_skips_bad_ones(client: redis.Redis) -> None:
    topics = Topics()
    reads, alerts = ReadStore(client), AlertStore(client)
    read = make_read("ING123")
    alert = make_alert(read, make_entry("ING123"))
    old = make_read("OLD999", at_ms=now_ms() - THIRTY_DAYS_MS - 1)
    records = [
        _record(topics.reads, read.to_json_bytes()),
        _record(topics.reads, read.to_json_bytes(), 1),  # replay: same keys
        _record(topics.reads, old.to_json_bytes(), 2),
        _record(topics.alerts, alert.to_json_bytes()),
        _record(topics.reads, b"not json", 3),
        _record(topics.reads, read.to_json_bytes().replace(b'"schema_version":"1"',
                                                         b'"schema_version":"9"'), 4),
        _record("other.topic", b"{}"),
    ]
    stats = ingest_records(records, reads=reads, alerts=alerts, topics=topics)
    assert (stats.reads, stats.alerts, stats.expired, stats.invalid, stats.ignored) == (
        2, 1, 1, 2, 1)
    assert reads.get(read.read_id) == read
    assert alerts.get(alert.alert_id) == alert
    assert reads.get(old.read_id) is None


def test_ingest_from_kafka(kafka: str, client: redis.Redis) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = Topics(reads=f"test.reads.{tag}", alerts=f"test.alerts.{tag}")
    ensure_retention_topics(kafka, load_policy(), [topics.reads, topics.alerts], partitions=2)
    try:
        batch = [make_read(f"KAF{i:03d}", camera=f"cam-{i % 3}") for i in range(20)]
        alert = make_alert(batch[0], make_entry(batch[0].plate))
        producer = make_producer(kafka)
        for read in batch:
            producer.produce(topics.reads, key=read.camera_id.encode(), value=read.to_json_bytes())
        producer.produce(topics.alerts, key=b"cam-0", value=alert.to_json_bytes())
        assert producer.flush(15) == 0
        reads, alerts = ReadStore(client), AlertStore(client)
        stats = run_ingest(kafka, reads=reads, alerts=alerts, topics=topics,
                           group_id=f"test-{tag}", idle_exit_s=1.5)
        assert (stats.reads, stats.alerts) == (20, 1)
        assert reads.count_reads() == 20
        assert reads.cameras() == {"cam-0", "cam-1", "cam-2"}
        assert alerts.get(alert.alert_id) == alert
    finally:
        delete_topics(kafka, [topics.reads, topics.alerts])
