"""The flow's frames source (flows/frames_source.py) on the real test broker: where a
partition starts with no saved state (a bounded look-back, not the topic's start), and
which frames it marks as replayed after a restart. The launcher's recovery folder."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Producer

from alpr.launcher import recovery_args
from connectors.kafka import ensure_topics
from flows.frames_source import FrameMessage, FramesSource, progress_folder, topic_folder


def _produce(bootstrap: str, topic: str, stamps_ms: list[int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for n, stamp in enumerate(stamps_ms):
        producer.produce(topic, key=b"cam-1", value=f"frame {n}".encode(), partition=0,
                         timestamp=stamp)
    assert producer.flush(30) == 0


def _source(bootstrap: str, topic: str, lookback_s: float, progress: Path) -> FramesSource:
    return FramesSource([bootstrap], topic, tail=False, lookback_s=lookback_s,
                        progress_dir=progress, batch_size=2, add_config={})


def _drain(source: FramesSource, topic: str, resume: int | None) -> list[FrameMessage]:
    part = source.build_part("frames_in", f"0-{topic}", resume)
    out: list[FrameMessage] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                out.extend(part.next_batch())
            except StopIteration:
                break
    finally:
        part.close()
    return out


def test_with_no_saved_state_it_starts_at_the_look_back_and_marks_what_it_read_again(
    kafka: str, unique_topic, tmp_path: Path,
) -> None:
    # Fed: 3 frames stamped an hour ago and 3 stamped now on one partition. Must hold:
    # with a 5-minute look-back and nothing saved, only the 3 recent frames are read
    # (the topic's start would be the hour-old ones; on a broker without a time index
    # they are fetched and skipped), none marked replayed; then 2 new frames, and the
    # partition resumed from offset 4 (a snapshot older than the crash): offsets 4-5,
    # read before, are marked replayed, the new ones are not; with look-back 0 the whole
    # topic is read.
    topic = unique_topic("frames")
    ensure_topics(kafka, [topic], partitions=1)
    now = int(time.time() * 1000)
    _produce(kafka, topic, [now - 3_600_000 + i for i in range(3)] + [now + i for i in range(3)])
    progress = tmp_path / "progress"

    first = _drain(_source(kafka, topic, 300, progress), topic, None)
    assert [(m.offset, m.replayed) for m in first] == [(3, False), (4, False), (5, False)]

    _produce(kafka, topic, [now + 10, now + 11])  # frames the first run never saw
    again = _drain(_source(kafka, topic, 300, progress), topic, 4)
    assert [(m.offset, m.replayed) for m in again] == [
        (4, True), (5, True), (6, False), (7, False)]
    assert all(isinstance(m, FrameMessage) for m in again)

    whole = _drain(_source(kafka, topic, 0, tmp_path / "other"), topic, None)
    assert [m.offset for m in whole] == [0, 1, 2, 3, 4, 5, 6, 7]


def test_the_recovery_folder_is_per_topic_made_once_and_off_when_empty(tmp_path: Path) -> None:
    # Fed: the launcher's recovery arguments for two frames topics in one folder, twice
    # for the first, and with ALPR_RECOVERY_DIR empty. Must hold: one initialised bytewax
    # folder per topic (state of one topic never resumed for another), the second call
    # reuses it untouched, snapshots every ALPR_SNAPSHOT_INTERVAL_S, backup 0; nothing
    # when recovery is off; a topic name cannot climb out of the folder.
    env = {"ALPR_RECOVERY_DIR": str(tmp_path), "ALPR_SNAPSHOT_INTERVAL_S": "1.5"}
    args = recovery_args({**env, "ALPR_TOPIC_FRAMES": "site.frames"})
    db = tmp_path / "site.frames" / "bytewax"
    assert args == ["-r", str(db), "-s", "1.5", "-b", "0"]
    parts = sorted(p.name for p in db.glob("part-*.sqlite3"))
    assert len(parts) >= 1
    stamp = (db / parts[0]).stat().st_mtime_ns
    assert recovery_args({**env, "ALPR_TOPIC_FRAMES": "site.frames"}) == args
    assert (db / parts[0]).stat().st_mtime_ns == stamp
    other = recovery_args({**env, "ALPR_TOPIC_FRAMES": "test.frames"})
    assert other[1] == str(tmp_path / "test.frames" / "bytewax") != args[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.frames", "test.frames"]
    assert recovery_args({**env, "ALPR_RECOVERY_DIR": ""}) == []
    assert progress_folder("", "site.frames") is None
    assert topic_folder("../x") == ".._x" and topic_folder("..") == "_.."
