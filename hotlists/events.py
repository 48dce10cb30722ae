"""`alpr.hotlist-updates`: one JSON event per import, upsert batch or removal.

Consumers that cache hotlist data refresh from it, and the historical-hits consumer
(safeguards.historical) searches the retained reads for the entries in `added`. Small
updates carry the added entries themselves; a big import carries the count and
`added_truncated: true`, and the entries stay retrievable from the store while that
version serves (HotlistStore.added_entries(source, version), or iter_entries when
`added_all` says the source had no previous version).

Events are keyed by source, so one source's events keep their order in a partition.
The flow itself caches nothing: it looks every batch up in Redis.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kernel.contracts import HotlistEntry, HotlistSource
from kernel.settings import Topics

__all__ = [
    "EventPublishError",
    "HotlistUpdate",
    "KafkaUpdatePublisher",
    "MemoryUpdatePublisher",
    "UpdatePublisher",
    "new_event_id",
]

SCHEMA_VERSION = "1"

# librdkafka's own lines ("Connect to ... failed", once per reconnect attempt).
_librdkafka_log = logging.getLogger(__name__ + ".librdkafka")


class _AtDebug:
    """librdkafka's logger (its `logger` setting): its lines at debug (`alpr -v` shows
    them), not on stderr by itself. A broker that is down or gone is said once, by the
    command that failed to publish, with what to do (hotlists.cli)."""

    def log(self, level: int, fmt: str, *args: Any) -> None:
        _librdkafka_log.debug(fmt, *args)


class HotlistUpdate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: str = SCHEMA_VERSION
    event_id: str
    action: Literal["import", "upsert"]
    source: HotlistSource
    version: int | None = Field(description="version serving after the update")
    entries: int = Field(description="entries serving after the update")
    imported_at: int = Field(description="epoch ms the update went live")
    file: str | None = None
    rows: int = 0
    rejected: int = 0
    rejected_by_code: dict[str, int] = Field(default_factory=dict)
    refused: int = Field(0, description="immigration-related rows, never stored")
    refused_by_reason: dict[str, int] = Field(default_factory=dict)
    skipped_expired: int = 0
    added: list[HotlistEntry] | None = Field(
        None, description="the added entries, when few enough to carry"
    )
    added_count: int | None = Field(None, description="entries (import: plates) added")
    added_all: bool = Field(False, description="no previous version: everything is new")
    added_truncated: bool = Field(False, description="too many to carry: ask the store")
    removed: list[dict[str, str]] = Field(
        default_factory=list,
        description="[{plate, entry_id}] removed (Amber cancellations): every cancellation "
        "the update carried, also one an earlier, cut-off import of the same file had "
        "already applied without announcing it; none serves after the update",
    )

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def new_event_id() -> str:
    return uuid.uuid4().hex


class EventPublishError(RuntimeError):
    """The event did not reach the broker (the hotlist change itself is live)."""


class UpdatePublisher(Protocol):
    def publish(self, update: HotlistUpdate) -> None: ...


class MemoryUpdatePublisher:
    """Keeps events in a list (tests, dry runs)."""

    def __init__(self) -> None:
        self.events: list[HotlistUpdate] = []

    def publish(self, update: HotlistUpdate) -> None:
        self.events.append(update)


class KafkaUpdatePublisher:
    """Publishes to the hotlist-updates topic and waits for the broker's ack."""

    def __init__(
        self,
        bootstrap: str,
        topic: str | None = None,
        *,
        timeout_s: float = 15.0,
        create_topic: bool = True,
    ) -> None:
        from confluent_kafka.admin import AdminClient

        from connectors.kafka import ensure_topics, make_producer

        self.topic = topic or Topics().hotlist_updates
        self.timeout_s = timeout_s
        if create_topic:
            # The broker answers first (KafkaException if not), asked by a client whose
            # lines go to the log: ensure_topics' own would print librdkafka's to stderr.
            admin = AdminClient({"bootstrap.servers": bootstrap, "logger": _AtDebug()})
            try:
                admin.list_topics(timeout=timeout_s)
            finally:
                admin.poll(0)  # hands its queued lines to the logger
            # One partition: consumers see every source's updates in order (the
            # deployment creates it the same way, with 30-day retention).
            ensure_topics(bootstrap, {self.topic: 1}, timeout=timeout_s)
        self._producer = make_producer(
            bootstrap, **{"message.timeout.ms": int(timeout_s * 1000)}, logger=_AtDebug())
        self._lock = threading.Lock()

    def publish(self, update: HotlistUpdate) -> None:
        errors: list[Any] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(err)

        with self._lock:
            self._producer.produce(
                self.topic,
                key=update.source.value.encode(),
                value=update.to_json_bytes(),
                on_delivery=delivered,
            )
            left = self._producer.flush(self.timeout_s)
        if left or errors:
            cause = errors[0] if errors else f"not acknowledged within {self.timeout_s} s"
            raise EventPublishError(f"hotlist update {update.event_id} not published: {cause}")
