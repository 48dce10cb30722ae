"""The frames source: bytewax's KafkaSource, started at a bounded look-back and marking
frames it has read before.

Where a partition starts:
- saved state (bytewax recovery): the offset of its last snapshot, as KafkaSource does;
- none (first start, recovery off): the first frame at most `lookback_s` old by Kafka
  timestamp (offsets_for_times), not the topic's start: the topic holds a day of every
  camera, weeks of work for a flow that must be live. `lookback_s` 0 keeps the topic's
  start (replays, tests).

Replays: each partition records, in a small file per partition under `progress_dir`,
the offset after the last frame it read. A frame below that mark, read again after a
restart (the snapshot is older than the crash, or there is no recovery), is marked
`replayed`: its reads and alerts may have been published before (with the same ids), so
consoles can tell them from live ones and latency metrics leave them out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bytewax.connectors.kafka import KafkaError, KafkaSource, KafkaSourceMessage
from bytewax.connectors.kafka import _KafkaSourcePartition as _Partition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    TopicPartition,
)

from flows import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameMessage(KafkaSourceMessage):
    """A frames-topic message; `replayed` when this flow read it before a restart."""

    replayed: bool = False


def topic_folder(topic: str) -> str:
    """A folder name for a topic (Kafka names are [a-zA-Z0-9._-]; anything else is
    replaced so a name can never climb out of its parent)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", topic)
    return "_" + safe if safe in {"", ".", ".."} else safe


def topic_state_folder(recovery_dir: str, topic: str) -> Path | None:
    """Where the flow keeps the state of one frames topic: bytewax's recovery partitions
    in its `bytewax/`, the replay marks in its `progress/`. Keyed by topic: state saved
    for another topic must never be resumed (bytewax refuses it, and its offsets mean
    nothing there). None when recovery is off (`recovery_dir` empty)."""
    if not recovery_dir.strip():
        return None
    return Path(recovery_dir).expanduser() / topic_folder(topic)


def progress_folder(recovery_dir: str, topic: str) -> Path | None:
    base = topic_state_folder(recovery_dir, topic)
    return None if base is None else base / "progress"


class Progress:
    """The offset after the last frame read, per partition: one small file each."""

    def __init__(self, folder: Path | None, partition: int) -> None:
        self.path = None if folder is None else folder / f"partition-{partition}.offset"

    def read(self) -> int:
        if self.path is None:
            return -1
        try:
            return int(self.path.read_text().strip() or -1)
        except (OSError, ValueError):
            return -1

    def write(self, next_offset: int) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(str(next_offset))
            os.replace(tmp, self.path)  # never a half-written mark
        except OSError as exc:  # marking replays is a help, never a reason to stop
            log.warning("could not record frames progress in %s: %s", self.path, exc)


class _FramesPartition(_Partition):
    def __init__(self, *args: object, progress: Progress, skip_before_ms: int | None,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._progress = progress
        self._replay_until = progress.read()
        self._skip_before_ms = skip_before_ms
        self._skipped = 0

    def _too_old(self, msg: KafkaSourceMessage) -> bool:
        """Before the look-back: brokers without a time index (tansu answers offset 0 to
        any time) start too early, so the start is checked here too, until the first
        frame inside the look-back (later ones are never dropped, whatever their stamp)."""
        if self._skip_before_ms is None:
            return False
        kind, stamp = msg.timestamp or (TIMESTAMP_NOT_AVAILABLE, 0)
        if kind != TIMESTAMP_NOT_AVAILABLE and stamp < self._skip_before_ms:
            self._skipped += 1
            return True
        if self._skipped:
            metrics.FRAMES_SKIPPED.labels("before_lookback").inc(self._skipped)
            log.warning("frames %s[%s]: skipped %d frame(s) older than the look-back",
                        msg.topic, msg.partition, self._skipped)
        self._skip_before_ms = None
        return False

    def next_batch(self) -> list[FrameMessage | KafkaError]:
        batch = super().next_batch()
        out: list[FrameMessage | KafkaError] = []
        for item in batch:
            msg = item.msg if isinstance(item, KafkaError) else item
            if not isinstance(item, KafkaError) and self._too_old(msg):
                continue
            framed = FrameMessage(**{f: getattr(msg, f) for f in _MESSAGE_FIELDS},
                                  replayed=(msg.offset or 0) < self._replay_until)
            out.append(replace(item, msg=framed) if isinstance(item, KafkaError) else framed)
        if batch:
            self._progress.write(self._offset)
        return out


_MESSAGE_FIELDS = ("key", "value", "topic", "headers", "latency", "offset", "partition",
                   "timestamp")


class FramesSource(KafkaSource):
    """KafkaSource over one frames topic, with a look-back start and replay marks."""

    def __init__(self, brokers: list[str], topic: str, *, tail: bool, lookback_s: float,
                 progress_dir: Path | None, batch_size: int,
                 add_config: dict[str, str]) -> None:
        super().__init__(brokers, [topic], tail=tail, starting_offset=OFFSET_BEGINNING,
                         add_config=add_config, batch_size=batch_size, raise_on_errors=False)
        self._lookback_s = lookback_s
        self._progress_dir = progress_dir

    def build_part(self, step_id: str, for_part: str,
                   resume_state: int | None) -> _FramesPartition:
        idx, topic = for_part.split("-", 1)
        part = int(idx)
        since_ms = int((time.time() - self._lookback_s) * 1000)
        fresh = resume_state is None and self._lookback_s > 0
        start = self._start_offset(topic, part, since_ms) if resume_state is None else (
            resume_state)
        config = {
            "group.id": "BYTEWAX_IGNORED",
            "enable.auto.commit": "false",
            "bootstrap.servers": ",".join(self._brokers),
            "enable.partition.eof": str(not self._tail),
            "statistics.interval.ms": 1000,
            **self._add_config,
        }
        progress = Progress(self._progress_dir, part)
        return _FramesPartition(step_id, config, topic, part, start, None, self._batch_size,
                                self._raise_on_errors, progress=progress,
                                skip_before_ms=since_ms if fresh else None)

    def _start_offset(self, topic: str, part: int, since_ms: int) -> int:
        if self._lookback_s <= 0:
            return OFFSET_BEGINNING
        consumer = Consumer({"bootstrap.servers": ",".join(self._brokers),
                             "group.id": "BYTEWAX_IGNORED", **self._add_config})
        try:
            [found] = consumer.offsets_for_times([TopicPartition(topic, part, since_ms)],
                                                 timeout=30)
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
        if found.error is not None:
            raise RuntimeError(f"frames topic {topic} partition {part}: could not find "
                               f"the offset of {self._lookback_s:g} s ago: {found.error}")
        # -1: no frame that recent; start at the end (the next frame).
        offset = found.offset if found.offset >= 0 else OFFSET_END
        log.info("frames %s[%s]: no saved state, starting %g s back (offset %s)",
                 topic, part, self._lookback_s, offset)
        return offset
