"""`alpr demo`: the whole system on one machine, with nothing given.

Starts a Kafka-protocol broker (tansu) and a redis-server on free loopback ports (or uses
the addresses given), loads a demo hotlist, runs the synthetic camera and the dataflow,
and prints each alert as the dispatch console receives it; the dispatch console itself
(a page) is served too, and its address and a login printed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from alpr.demo_console import dispatch_console
from alpr.launcher import FlowTopics, start_flow_processes, stop_processes, wait_until_ready
from connectors.kafka import make_producer
from hotlists.store import HotlistStore
from kernel.contracts import Alert, HotlistEntry, HotlistSource
from kernel.redis_client import redis_from_url
from kernel.settings import Topics
from sim.local_services import LocalKafka, LocalRedis
from sim.synthetic_camera import (
    SyntheticPass,
    camera_partitions,
    generate_passes,
    iter_frames,
    publish_frames,
)

PARTITIONS = 4

# What the demo hotlist says about the plates it lists, cycling.
DEMO_REASONS: tuple[tuple[HotlistSource, str, int], ...] = (
    (HotlistSource.NCIC, "Stolen vehicle", 2),
    (HotlistSource.NCMEC, "Amber alert: abducted child", 1),
    (HotlistSource.CCIC, "Felony warrant", 2),
    (HotlistSource.LOCAL, "Stolen plate (agency list)", 3),
)


@dataclass
class DemoCounts:
    frames: int = 0
    reads: int = 0
    alerts: int = 0
    dead_letters: int = 0

    def summary(self) -> str:
        return (
            f"summary: frames={self.frames} reads={self.reads} alerts={self.alerts} "
            f"dead_letters={self.dead_letters}"
        )


def demo_hotlist(passes: list[SyntheticPass], every: int = 4) -> list[HotlistEntry]:
    """Every `every`-th vehicle of the demo is on a list."""
    entries = []
    for n, p in enumerate(passes[::every]):
        source, reason, priority = DEMO_REASONS[n % len(DEMO_REASONS)]
        entries.append(
            HotlistEntry(
                plate=p.plate, state="CO", source=source, reason=reason,
                entry_id=f"DEMO-{source.value}-{n:04d}", priority=priority,
            )
        )
    return entries


def load_hotlist(redis_url: str, entries: list[HotlistEntry]) -> None:
    store = HotlistStore(redis_from_url(redis_url))
    for source in HotlistSource:
        batch = [e for e in entries if e.source == source]
        if batch:
            store.replace_source(source, batch)


@contextlib.contextmanager
def _services(kafka: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    with contextlib.ExitStack() as stack:
        if kafka is None:
            kafka = stack.enter_context(LocalKafka()).bootstrap
        if redis_url is None:
            redis_url = stack.enter_context(LocalRedis()).url
        yield kafka, redis_url


def _console_consumer(bootstrap: str, topics: list[str]) -> Consumer:
    # assign() at offset 0: no group join delay, and nothing published is missed.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "alpr-demo-console",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(t, p, 0) for t in topics for p in range(PARTITIONS)])
    return consumer


def format_alert(alert: Alert, received_ms: int) -> str:
    return (
        f"ALERT plate={alert.read.plate} camera={alert.read.camera_id} "
        f"list={alert.entry.source.value} reason=\"{alert.entry.reason}\" "
        f"priority={alert.entry.priority} confidence={alert.read.confidence:.2f} "
        f"latency_ms={received_ms - alert.read.last_seen} status={alert.status.value} "
        f"alert_id={alert.alert_id}"
    )


def run_demo(
    duration_s: float, kafka: str | None = None, redis_url: str | None = None,
    workers: int = 2, fps: float = 3.0, cameras: int = 2, seed: int = 7,
) -> DemoCounts:
    counts = DemoCounts()
    topics = Topics()
    stop = threading.Event()
    previous_handler = signal.signal(signal.SIGINT, lambda *_: stop.set())
    log_dir = Path(tempfile.mkdtemp(prefix="alpr-demo-"))
    try:
        with _services(kafka, redis_url) as (bootstrap, redis_address):
            print(f"demo: kafka={bootstrap} redis={redis_address} logs={log_dir}", flush=True)
            # Reads and alerts never outlive the policy's retention (30 days), here too.
            FlowTopics(topics.frames, topics.reads, topics.alerts,
                       topics.dead_letters).create(bootstrap, partitions=PARTITIONS)
            n_passes = max(8, int(duration_s * fps / 5) + 4)
            camera_ids = [f"cam-{i + 1}" for i in range(cameras)]
            passes = generate_passes(n_passes, 5, seed=seed, cameras=camera_ids,
                                     conditions="typical")
            entries = demo_hotlist(passes)
            load_hotlist(redis_address, entries)
            print(f"demo: hotlist loaded: {len(entries)} plates of {len(passes)} vehicles; "
                  f"camera at {fps:g} frames/s", flush=True)
            env = {
                "ALPR_KAFKA_BOOTSTRAP": bootstrap, "ALPR_REDIS_URL": redis_address,
                "ALPR_METRICS_PORT": os.environ.get("ALPR_METRICS_PORT", "9108"),
                # With recovery, as deployed; its own folder, as its broker is its own.
                "ALPR_RECOVERY_DIR": str(log_dir / "recovery"),
            }
            log = (log_dir / "flow.log").open("wb")
            # One worker per process: recognition's Python steps then run in parallel
            # (threads of one process share the GIL: 1.48x against 1.85x for 2 processes).
            flow_env = {**os.environ, **env}
            flows = start_flow_processes(flow_env, workers=1, processes=workers, log=log)
            # The camera starts once the flow can read: otherwise the first alerts' latency
            # is the flow's start-up (models loading), not what a running site sees.
            ready_s = wait_until_ready(flows, flow_env)
            if ready_s is None:
                print("demo: flow readiness not seen on its /metrics; starting the camera "
                      "anyway", flush=True)
            else:
                print(f"demo: flow ready in {ready_s:.1f} s", flush=True)
            camera = threading.Thread(
                target=_run_camera,
                args=(bootstrap, topics.frames, passes, fps, stop, counts,
                      camera_partitions(camera_ids, PARTITIONS)),
                daemon=True,
            )
            camera.start()
            try:
                with dispatch_console(bootstrap, redis_address, topics.alerts) as desk:
                    print(desk.banner(), flush=True)
                    _console(bootstrap, topics, duration_s, stop, flows, counts, log_dir)
            finally:
                stop.set()
                camera.join(timeout=10)
                stop_processes(flows)
                log.close()
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    print(counts.summary(), flush=True)
    return counts


def _run_camera(bootstrap: str, topic: str, passes: list[SyntheticPass], fps: float,
                stop: threading.Event, counts: DemoCounts, partitions: dict[str, int]) -> None:
    producer = make_producer(bootstrap)
    frames = list(iter_frames(passes))
    # One corrupt frame in the stream: it must land in dead letters, and nothing else stop.
    corrupt_at = len(frames) // 3
    for i, frame in enumerate(frames):
        if stop.is_set():
            break
        publish_frames(producer, topic, [frame], rate_fps=None, rewrite_time=True,
                       partitions=partitions)
        counts.frames += 1
        if i == corrupt_at:
            producer.produce(topic, key=frame.camera_id.encode(),
                             value=np.random.default_rng(0).bytes(5000),
                             headers={"camera_id": frame.camera_id,
                                      "captured_at": str(int(time.time() * 1000)),
                                      "frame_id": f"{frame.frame_id}-corrupt"})
            counts.frames += 1
        producer.flush()
        stop.wait(1 / fps)


def _console(bootstrap: str, topics: Topics, duration_s: float, stop: threading.Event,
             flows: list[subprocess.Popen], counts: DemoCounts, log_dir: Path) -> None:
    consumer = _console_consumer(bootstrap, [topics.reads, topics.alerts, topics.dead_letters])
    seen_alerts: set[str] = set()
    deadline = time.monotonic() + duration_s
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            ended = [f for f in flows if f.poll() is not None]
            if ended:
                tail = (log_dir / "flow.log").read_text(errors="replace")[-2000:]
                print(f"demo: the flow exited with {ended[0].returncode}:\n{tail}", flush=True)
                break
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            if msg.topic() == topics.reads:
                counts.reads += 1
            elif msg.topic() == topics.dead_letters:
                counts.dead_letters += 1
            elif msg.topic() == topics.alerts:
                alert = Alert.model_validate_json(msg.value())
                if alert.alert_id in seen_alerts:  # replays after a restart carry the same id
                    continue
                seen_alerts.add(alert.alert_id)
                counts.alerts += 1
                print(format_alert(alert, int(time.time() * 1000)), flush=True)
    finally:
        consumer.close()
