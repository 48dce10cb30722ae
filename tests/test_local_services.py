"""LocalKafka / LocalRedis and the Kafka helpers, against the real servers."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from connectors.kafka import (
    TopicNotFoundError,
    delete_topics,
    ensure_topics,
    make_producer,
    read_all,
)
from sim.local_services import (
    LocalKafka,
    LocalRedis,
    LocalServiceError,
    free_port,
    tansu_binary,
)


def _has_tansu() -> bool:
    try:
        tansu_binary()
    except LocalServiceError:
        return False
    return True


needs_tansu = pytest.mark.skipif(not _has_tansu(), reason="tansu needs Linux x86-64")


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@needs_tansu
def test_local_kafka_starts_and_stops() -> None:
    with LocalKafka() as broker:
        host, port = broker.bootstrap.split(":")
        assert host == "127.0.0.1" and int(port) > 0
        AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=5)
        proc = broker._proc
    assert proc is not None and proc.poll() is not None
    with pytest.raises(LocalServiceError):
        _ = broker.bootstrap


def test_local_kafka_missing_binary_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LocalServiceError, match="KAFKA_BOOTSTRAP"):
        LocalKafka(binary=tmp_path / "no-tansu").start()


@needs_tansu
def test_local_kafka_reports_a_dying_broker() -> None:
    # Port taken by someone else: tansu exits and the error carries its log.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(LocalServiceError, match=r"(?i)address"):
            LocalKafka(port=port, start_timeout=5).start()


def test_topic_roundtrip_with_keys_and_headers(
    kafka: str, unique_topic: Callable[[str], str]
) -> None:
    topic = unique_topic("roundtrip")
    ensure_topics(kafka, {topic: 3})
    ensure_topics(kafka, [topic])  # idempotent
    try:
        producer = make_producer(kafka)
        for i in range(10):
            producer.produce(
                topic,
                key=f"cam-{i % 4}",
                value=f'{{"n": {i}}}',
                headers={"camera_id": f"cam-{i % 4}", "seq": str(i)},
            )
        assert producer.flush(10) == 0

        records = read_all(kafka, topic, expect=10, timeout=15)
        assert len(records) == 10
        assert sorted(r.json()["n"] for r in records) == list(range(10))
        for r in records:
            n = r.json()["n"]
            assert r.key == f"cam-{n % 4}".encode()
            assert r.key_text == f"cam-{n % 4}"
            assert r.headers == {"camera_id": f"cam-{n % 4}", "seq": str(n)}
            assert r.topic == topic and r.timestamp
        # The same key always lands on the same partition, in produce order.
        by_key: dict[bytes | None, set[int]] = {}
        for r in records:
            by_key.setdefault(r.key, set()).add(r.partition)
        assert all(len(parts) == 1 for parts in by_key.values())
        assert {r.partition for r in records} <= {0, 1, 2}

        # Fewer records than expected: returns what is there once idle.
        assert len(read_all(kafka, topic, expect=50, idle=0.5, timeout=10)) == 10
        assert len(read_all(kafka, topic, stop_at_eof=True, timeout=10)) == 10
    finally:
        delete_topics(kafka, [topic])
    with pytest.raises(TopicNotFoundError):
        read_all(kafka, topic, timeout=0.5)


def test_local_redis_on_free_port_without_persistence() -> None:
    with LocalRedis() as server:
        client = server.client()
        assert client.ping()
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client.set("k", "v")
        client.close()
        server.restart()
        client = server.client()
        assert client.get("k") is None  # no AOF, no RDB: nothing survives
        client.close()
    assert not server.data_dir.exists()


def test_local_redis_restart_keeps_data_with_appendonly() -> None:
    with LocalRedis(appendonly=True) as server:
        port = server.port
        client = server.client()
        client.hset("h", mapping={"a": "1", "b": "2"})
        client.close()
        server.restart()
        assert server.port == port
        client = server.client(decode_responses=True)
        assert client.hgetall("h") == {"a": "1", "b": "2"}
        client.close()
