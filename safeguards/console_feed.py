"""The dispatch console's feed: alerts from `alpr.alerts`, in order, each once.

`AlertFeed` holds the events the console pushes (an alert, or a change of an alert's
claim or outcome), numbered in order. A page that reconnects says the last number it
saw (`Last-Event-ID: {epoch}:{seq}`) and gets everything after it; a page that reloads
says nothing and gets every alert still in the feed with its current state. A replayed
alert (same `alert_id`) is not a new event. `epoch` changes when the process restarts,
so a page never takes a new process's numbers for its old ones (it then gets all).

`AlertFollower` reads `alpr.alerts` from the start of every partition, skipping alerts
produced before the backlog window, stores each alert (so a dispatcher can claim and
close any alert the console shows: the verification service needs it stored; the same
idempotent write `alpr retention ingest` makes) and adds it to the feed.

`alert_view` is what the page shows of an alert: the read character by character with
its confidence, which characters differ from the hotlist plate, the entry and how old
its list is. Everything is data (JSON), shown by the page as text, never as markup.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from pydantic import ValidationError

from connectors.kafka import consumer_config
from kernel.contracts import SCHEMA_VERSION, Alert
from safeguards.alerts import AlertStore

__all__ = ["AlertFeed", "AlertFollower", "FeedEvent", "alert_view"]

log = logging.getLogger(__name__)

SOURCE_NAMES = {"NCIC": "NCIC", "NCMEC": "NCMEC Amber Alert", "CCIC": "CCIC",
                "LOCAL": "Agency list"}
# A crop is shown only as a JPEG data URL of plain base64 (and not a huge one).
_MAX_CROP_B64 = 2_000_000


def _crop_url(b64: str) -> str:
    if not b64 or len(b64) > _MAX_CROP_B64:
        return ""
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return ""
    if not data.startswith(b"\xff\xd8"):
        return ""
    return "data:image/jpeg;base64," + b64


def _differing(read_plate: str, hotlist_plate: str, given: list[int]) -> set[int]:
    if given:
        return set(given)
    if len(read_plate) == len(hotlist_plate):
        return {i for i, (a, b) in enumerate(zip(read_plate, hotlist_plate, strict=True))
                if a != b}
    return set()


def alert_view(alert: Alert, raw_read: dict[str, Any], *, unsure_below: float,
               list_imported_at: int | None) -> dict[str, Any]:
    """The page's view of `alert`. `raw_read` is the read as published: it may carry
    fields newer than our contract (`state_confidence`), shown when present."""
    read, entry, match = alert.read, alert.entry, alert.match
    confs: list[float | None] = list(read.char_confidences)
    if len(confs) != len(read.plate):
        confs = [None] * len(read.plate)  # not aligned with the characters: say nothing
    read_plate = match.read_plate or read.plate
    diff = _differing(read_plate, match.hotlist_plate, match.differing_positions)
    state_conf = raw_read.get("state_confidence")
    return {
        "alert_id": alert.alert_id,
        "priority": entry.priority,
        "historical": alert.historical,
        "produced_at": alert.produced_at,
        "instruction": alert.instruction,
        "read": {
            "plate": read.plate,
            "chars": [{"c": c, "conf": conf,
                       "unsure": conf is not None and conf < unsure_below,
                       "differs": i in diff and read.plate == read_plate}
                      for i, (c, conf) in enumerate(zip(read.plate, confs, strict=True))],
            "confidence": read.confidence,
            "state": read.state,
            "state_confidence": state_conf if isinstance(state_conf, int | float) else None,
            "camera_id": read.camera_id,
            "seen_at": read.first_seen,
            "lat": read.lat, "lon": read.lon, "heading": read.heading, "lane": read.lane,
            "crop": _crop_url(read.crop_jpeg_b64),
        },
        "match": {"method": match.method, "hotlist_plate": match.hotlist_plate,
                  "hotlist_chars": [{"c": c, "differs": i in diff}
                                    for i, c in enumerate(match.hotlist_plate)]},
        "entry": {"source": entry.source.value,
                  "source_name": SOURCE_NAMES.get(entry.source.value, entry.source.value),
                  "reason": entry.reason, "state": entry.state, "entry_id": entry.entry_id,
                  "category": entry.category, "list_imported_at": list_imported_at},
    }


@dataclass(frozen=True, slots=True)
class FeedEvent:
    seq: int
    kind: str  # "alert" | "state"
    alert_id: str
    data: dict[str, Any]


@dataclass
class AlertFeed:
    """Numbered console events; an alert id is added once. Thread-safe."""

    max_alerts: int = 5000
    epoch: str = field(default_factory=lambda: secrets.token_hex(4))
    _events: list[FeedEvent] = field(default_factory=list)
    _alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._events[-1].seq if self._events else 0

    def add_alert(self, view: dict[str, Any]) -> bool:
        """Add an alert; False (nothing added) when its id is already in the feed."""
        with self._lock:
            if view["alert_id"] in self._alerts:
                return False
            self._alerts[view["alert_id"]] = view
            self._append("alert", view["alert_id"], view)
            if len(self._alerts) > self.max_alerts:
                oldest = next(iter(self._alerts))
                del self._alerts[oldest]
                self._events = [e for e in self._events if e.alert_id != oldest]
            return True

    def add_state(self, alert_id: str, state: dict[str, Any]) -> None:
        with self._lock:
            if alert_id in self._alerts:
                self._append("state", alert_id, {"alert_id": alert_id, **state})

    def _append(self, kind: str, alert_id: str, data: dict[str, Any]) -> None:
        seq = (self._events[-1].seq if self._events else 0) + 1
        self._events.append(FeedEvent(seq, kind, alert_id, data))

    def alerts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._alerts.values())

    def after(self, seq: int) -> list[FeedEvent]:
        with self._lock:
            return [e for e in self._events if e.seq > seq]

    def has(self, alert_id: str) -> bool:
        with self._lock:
            return alert_id in self._alerts


class AlertFollower:
    """A thread reading `topic` into `feed` (and `alerts`) until stopped."""

    def __init__(self, bootstrap: str, topic: str, feed: AlertFeed, alerts: AlertStore, *,
                 backlog_ms: int, unsure_below: float,
                 list_imported_at: Callable[[str], int | None]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.feed = feed
        self.alerts = alerts
        self.backlog_ms = backlog_ms
        self.unsure_below = unsure_below
        self.list_imported_at = list_imported_at
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="console-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _assign(self, consumer: Consumer) -> bool:
        meta = consumer.list_topics(self.topic, timeout=2).topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return False
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING)
                         for p in sorted(meta.partitions)])
        return True

    def _run(self) -> None:
        consumer = Consumer(consumer_config(self.bootstrap))
        try:
            while not self._stop.is_set() and not self._assign(consumer):
                self._stop.wait(1.0)  # the topic is made by the flow or `alpr retention`
            while not self._stop.is_set():
                msgs = consumer.consume(num_messages=500, timeout=0.2)
                batch = []
                for msg in msgs:
                    if msg.error() is not None:
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            log.warning("console: %s", msg.error())
                        continue
                    batch.append(msg.value())
                if batch:
                    self.take(batch)
        except Exception:  # a dead follower must be loud, not a silent empty console
            log.exception("console: the alert follower stopped")
            raise
        finally:
            consumer.close()

    def take(self, values: list[bytes | None]) -> int:
        """Store and add the alerts among raw `values`; returns how many were new."""
        cutoff = int(time.time() * 1000) - self.backlog_ms
        parsed: list[tuple[Alert, dict[str, Any]]] = []
        for value in values:
            try:
                alert = Alert.model_validate_json(value or b"")
            except ValidationError:
                log.warning("console: a record on %s is not an alert: skipped", self.topic)
                continue
            if alert.schema_version != SCHEMA_VERSION or alert.produced_at < cutoff:
                continue
            # The read as published: it may carry fields newer than our contract.
            read = json.loads(value or b"{}").get("read") or {}
            parsed.append((alert, read if isinstance(read, dict) else {}))
        if not parsed:
            return 0
        self.alerts.put_many(a for a, _ in parsed)
        new = 0
        for alert, read in parsed:
            view = alert_view(alert, read, unsure_below=self.unsure_below,
                              list_imported_at=self.list_imported_at(alert.entry.source.value))
            new += self.feed.add_alert(view)
        return new
