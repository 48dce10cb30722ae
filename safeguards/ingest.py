"""Kafka consumers of the safeguards: retained reads/alerts, and historical hits.

The work is plain functions over records (`ingest_records`, `handle_hotlist_updates`),
tested without a broker; `run_ingest` / `run_hotlist_updates` are thin loops around
them. Offsets are committed after the stores have the data (at-least-once): the stores
are keyed by the records' deterministic ids, so a replay rewrites the same keys.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from pydantic import ValidationError

from connectors.kafka import KafkaRecord, consumer_config, make_producer
from hotlists.store import HotlistStore
from kernel.contracts import SCHEMA_VERSION, Alert, PlateRead
from kernel.settings import Topics
from safeguards.alerts import AlertStore
from safeguards.historical import (
    AddedEntries,
    historical_alerts,
    mark_produced,
    parse_hotlist_update,
)
from safeguards.policy import Policy
from safeguards.retention import ReadStore

__all__ = [
    "IngestStats",
    "handle_hotlist_updates",
    "ingest_records",
    "run_hotlist_updates",
    "run_ingest",
]

log = logging.getLogger(__name__)
_M = TypeVar("_M", PlateRead, Alert)


@dataclass(slots=True)
class IngestStats:
    reads: int = 0  # stored
    alerts: int = 0  # stored
    expired: int = 0  # already past retention: not stored
    invalid: int = 0  # not JSON, wrong schema version, failed validation
    ignored: int = 0  # other topics

    def add(self, other: IngestStats) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _parse(record: KafkaRecord, model: type[_M]) -> _M | None:
    try:
        data = record.json()
    except ValueError:
        return None
    if not isinstance(data, dict) or str(data.get("schema_version", "")) != SCHEMA_VERSION:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def ingest_records(
    records: Iterable[KafkaRecord], *, reads: ReadStore, alerts: AlertStore,
    topics: Topics | None = None,
) -> IngestStats:
    """Store the reads and alerts among `records`; bad records are counted, not fatal."""
    topics = topics or Topics()
    stats = IngestStats()
    new_reads: list[PlateRead] = []
    new_alerts: list[Alert] = []
    for record in records:
        if record.topic == topics.reads:
            read = _parse(record, PlateRead)
            if read is None:
                stats.invalid += 1
            else:
                new_reads.append(read)
        elif record.topic == topics.alerts:
            alert = _parse(record, Alert)
            if alert is None:
                stats.invalid += 1
            else:
                new_alerts.append(alert)
        else:
            stats.ignored += 1
    if stats.invalid:
        log.warning("%d invalid records skipped", stats.invalid)
    stats.reads = reads.put_many(new_reads)
    stats.alerts = alerts.put_many(new_alerts)
    stats.expired = len(new_reads) + len(new_alerts) - stats.reads - stats.alerts
    return stats


def handle_hotlist_updates(
    records: Iterable[KafkaRecord], *, reads: ReadStore, alerts: AlertStore,
    hotlists: HotlistStore, policy: Policy | Callable[[], Policy] | None = None,
    publish: Callable[[list[Alert]], None] | None = None,
) -> list[Alert]:
    """Historical alerts for the entries the update events add.

    `policy` screens the entries for prohibited purposes; a callable (the site's policy
    source) is asked once per batch, so an edited purpose applies from the next batch.
    `publish` (e.g. to alpr.alerts) runs before the alerts are marked produced and
    stored, so a failed delivery leaves them to be produced again on the retry.
    """
    added = AddedEntries()
    for record in records:
        added |= parse_hotlist_update(record.value, hotlists)
    if not added:
        return []
    current = policy() if callable(policy) else policy
    new = historical_alerts(reads, hotlists, added, alert_store=alerts, policy=current,
                            mark=False)
    if not new:
        return []
    if publish is not None:
        publish(new)
    mark_produced(reads, new)
    alerts.put_many(new)
    return new


# --- thin Kafka loops ------------------------------------------------------------------


def _to_record(msg: Any) -> KafkaRecord:
    ts_type, ts = msg.timestamp()
    return KafkaRecord(topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
                       key=msg.key(), value=msg.value(), timestamp=ts if ts_type else None)


def _consume(
    bootstrap: str, group_id: str, subscribe: Sequence[str],
    handle: Callable[[list[KafkaRecord]], None], *, stop: threading.Event | None,
    idle_exit_s: float | None, batch: int,
) -> None:
    """Consume `subscribe` in a consumer group, hand batches to `handle`, commit after."""
    # A short session timeout: heartbeats come from librdkafka's own thread, and brokers
    # finish a group join sooner (tansu waits about half the session timeout).
    consumer = Consumer({**consumer_config(bootstrap, group_id), "session.timeout.ms": 6000,
                         "heartbeat.interval.ms": 1000})
    last: float | None = None  # idle time counts from the first partition assignment

    def on_assign(_consumer: Any, _partitions: Any) -> None:
        nonlocal last
        last = last or time.monotonic()

    consumer.subscribe(list(subscribe), on_assign=on_assign)
    try:
        while stop is None or not stop.is_set():
            msgs = consumer.consume(num_messages=batch, timeout=0.5)
            good = []
            for msg in msgs:
                err = msg.error()
                if err is None:
                    good.append(msg)
                elif err.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(err)
            if good:
                handle([_to_record(m) for m in good])
                for msg in good:  # handled: only now may the group move past them
                    consumer.store_offsets(message=msg)
                consumer.commit(asynchronous=False)
                last = time.monotonic()
            elif (idle_exit_s is not None and last is not None
                  and time.monotonic() - last > idle_exit_s):
                return
    finally:
        consumer.close()


def run_ingest(
    bootstrap: str, *, reads: ReadStore, alerts: AlertStore, topics: Topics | None = None,
    group_id: str = "alpr-safeguards", stop: threading.Event | None = None,
    idle_exit_s: float | None = None, batch: int = 500,
) -> IngestStats:
    """Store alpr.reads and alpr.alerts until `stop` is set (or `idle_exit_s` of quiet)."""
    topics = topics or Topics()
    total = IngestStats()

    def handle(records: list[KafkaRecord]) -> None:
        total.add(ingest_records(records, reads=reads, alerts=alerts, topics=topics))

    _consume(bootstrap, f"{group_id}-ingest", [topics.reads, topics.alerts], handle,
             stop=stop, idle_exit_s=idle_exit_s, batch=batch)
    return total


def run_hotlist_updates(
    bootstrap: str, *, reads: ReadStore, alerts: AlertStore, hotlists: HotlistStore,
    policy: Policy | Callable[[], Policy] | None = None, topics: Topics | None = None,
    group_id: str = "alpr-safeguards",
    producer: Producer | None = None, stop: threading.Event | None = None,
    idle_exit_s: float | None = None,
) -> int:
    """Publish historical alerts to alpr.alerts for each hotlist update; returns count."""
    topics = topics or Topics()
    out = producer or make_producer(bootstrap)
    sent = 0

    def publish(new: list[Alert]) -> None:
        for alert in new:
            out.produce(topics.alerts, key=alert.read.camera_id.encode(),
                        value=alert.to_json_bytes())
        if out.flush(30) != 0:
            raise KafkaException("historical alerts not delivered within 30 s")

    def handle(records: list[KafkaRecord]) -> None:
        nonlocal sent
        sent += len(handle_hotlist_updates(records, reads=reads, alerts=alerts,
                                           hotlists=hotlists, policy=policy, publish=publish))

    _consume(bootstrap, f"{group_id}-historical", [topics.hotlist_updates], handle,
             stop=stop, idle_exit_s=idle_exit_s, batch=100)
    return sent
