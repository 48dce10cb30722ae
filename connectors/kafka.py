"""Small confluent-kafka helpers shared by the flow, the demo, tests and benchmarks.

They work against Apache Kafka and against tansu (the broker of the local demo and the
tests). tansu's watermarks/OFFSET_END are wrong when a batch holds several records, so
nothing here relies on them: `read_all` reads every partition from offset 0 instead.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = [
    "MAX_MESSAGE_BYTES",
    "KafkaRecord",
    "TopicNotFoundError",
    "consumer_config",
    "delete_topics",
    "ensure_topics",
    "make_producer",
    "producer_config",
    "read_all",
]

# Frames are JPEGs of up to a few MB (see Settings.max_frame_bytes = 4 MB): leave headroom.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class TopicNotFoundError(LookupError):
    """The topic does not exist (or did not appear before the timeout)."""


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One consumed message, detached from librdkafka (safe to keep and compare)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    timestamp: int | None = None  # epoch ms, as set by the producer or broker

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")

    def json(self) -> Any:
        """The value parsed as JSON (alerts, reads, dead letters are JSON)."""
        if self.value is None:
            raise ValueError(f"{self.topic}[{self.partition}]@{self.offset} has no value")
        return json.loads(self.value)


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def _error_code(exc: BaseException) -> int | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code()
    return None


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int] | Iterable[str],
    partitions: int = 4,
    config: Mapping[str, str] | None = None,
    timeout: float = 15,
) -> None:
    """Create the topics that do not exist yet and wait until the broker lists them.

    `topics` is a list of names (each gets `partitions`) or a {name: partitions} mapping.
    Existing topics are left as they are (their partition count is not changed).
    """
    wanted = dict(topics) if isinstance(topics, Mapping) else dict.fromkeys(topics, partitions)
    if not wanted:
        return
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [
        NewTopic(name, num_partitions=n, replication_factor=1, config=dict(config or {}))
        for name, n in wanted.items()
        if name not in existing
    ]
    if missing:
        # Another client may have created one meanwhile: that is fine.
        _await_topic_futures(admin.create_topics(missing, request_timeout=timeout), deadline,
                             ignore=KafkaError.TOPIC_ALREADY_EXISTS, verb="create")
    # Creation is asynchronous on some brokers: wait until metadata shows every partition.
    while True:
        md = admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
        pending = [
            name
            for name in wanted
            if name not in md.topics
            or md.topics[name].error is not None
            or not md.topics[name].partitions
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not listed after {timeout} s: {pending}")
        time.sleep(0.05)


def _await_topic_futures(
    futures: dict[str, Any], deadline: float, *, ignore: int, verb: str
) -> None:
    """Wait for an admin call's per-topic futures; the error code `ignore` is no error."""
    for name, fut in futures.items():
        try:
            fut.result(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            if _error_code(exc) != ignore:
                raise RuntimeError(f"cannot {verb} topic {name!r}: {exc}") from exc


def delete_topics(bootstrap: str, topics: Iterable[str], timeout: float = 15) -> None:
    """Delete topics (missing ones are ignored) and wait until they are no longer listed.

    tansu keeps everything in memory without retention: tests should delete their topics.
    """
    names = list(dict.fromkeys(topics))
    if not names:
        return
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout
    _await_topic_futures(admin.delete_topics(names, request_timeout=timeout), deadline,
                         ignore=KafkaError.UNKNOWN_TOPIC_OR_PART, verb="delete")
    while True:
        listed = admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
        left = [n for n in names if n in listed.topics]
        if not left:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics still listed after {timeout} s: {left}")
        time.sleep(0.05)


def producer_config(bootstrap: str) -> dict[str, Any]:
    """Producer settings used across the project.

    Idempotence keeps retries from duplicating or reordering records within a partition;
    a short linger batches the bursts of a camera without adding visible latency.
    """
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "enable.idempotence": True,
        "acks": "all",
        "message.max.bytes": MAX_MESSAGE_BYTES,
        # JPEG frames do not compress, JSON alerts/reads do; lz4 is cheap on both.
        "compression.type": "lz4",
    }


def make_producer(bootstrap: str, **overrides: Any) -> Producer:
    """A Producer with `producer_config` plus overrides.

    Dotted librdkafka keys go through a dict: `make_producer(b, **{"linger.ms": 0})`;
    Python callbacks directly: `make_producer(b, error_cb=f)`.
    """
    return Producer({**producer_config(bootstrap), **overrides})


def consumer_config(bootstrap: str, group_id: str | None = None) -> dict[str, Any]:
    """Consumer settings able to fetch MAX_MESSAGE_BYTES records; no auto commit."""
    return {
        "bootstrap.servers": bootstrap,
        # librdkafka wants a group id even for assign(); it is not used to join a group.
        "group.id": group_id or f"alpr-reader-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 4 * MAX_MESSAGE_BYTES,
        "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
        "receive.message.max.bytes": 4 * MAX_MESSAGE_BYTES + 1024 * 1024,
    }


def _partitions(consumer: Consumer, topic: str, deadline: float) -> list[int]:
    while True:
        md = consumer.list_topics(topic, timeout=max(0.5, min(2.0, deadline - time.monotonic())))
        meta = md.topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions:
            return sorted(meta.partitions)
        if time.monotonic() > deadline:
            raise TopicNotFoundError(f"topic {topic!r} does not exist")
        time.sleep(0.1)


def read_all(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    timeout: float = 30,
    idle: float = 3.0,
    stop_at_eof: bool = False,
) -> list[KafkaRecord]:
    """Read a topic from the beginning of every partition.

    Stops when `expect` records were read, when `idle` seconds pass without a new record,
    when `stop_at_eof` is set and every partition reported its end, or after `timeout`.
    Returns the records sorted by (partition, offset). Uses assign() at offset 0, not a
    consumer group (the first group join on tansu takes 3-5 s) and no watermarks (wrong
    on tansu). Waits up to `timeout` for the topic to exist (TopicNotFoundError).
    """
    deadline = time.monotonic() + timeout
    consumer = Consumer({**consumer_config(bootstrap), "enable.partition.eof": True})
    records: list[KafkaRecord] = []
    try:
        partitions = _partitions(consumer, topic, deadline)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_eof: set[int] = set()
        last_new = time.monotonic()
        while True:
            now = time.monotonic()
            if expect is not None and len(records) >= expect:
                break
            if now >= deadline or now - last_new >= idle:
                break
            if stop_at_eof and expect is None and at_eof.issuperset(partitions):
                break
            wait = max(0.0, min(0.2, deadline - now, idle - (now - last_new)))
            for msg in consumer.consume(num_messages=1000, timeout=wait):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(msg.partition())
                        continue
                    raise KafkaException(err)
                at_eof.discard(msg.partition())
                records.append(_record(msg))
                last_new = time.monotonic()
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.partition, r.offset))
    return records


def _record(msg: Any) -> KafkaRecord:
    headers: dict[str, str] = {}
    for name, raw in msg.headers() or ():
        # Repeated header names: the last one wins, as in most HTTP-style readers.
        headers[name] = "" if raw is None else bytes(raw).decode("utf-8", "replace")
    ts_type, ts = msg.timestamp()
    return KafkaRecord(
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        value=msg.value(),
        headers=headers,
        timestamp=ts if ts_type != 0 else None,
    )
