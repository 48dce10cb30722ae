"""Pipeline benchmark: frames/s, reads/s and frame->alert latency of the real flow.

    python -m benchmarks.pipeline --fps 8 --workers 2 --passes 40 --json out.json
    python -m benchmarks.pipeline --fps 0 --workers 2          # throughput: backlog first

With --fps > 0 a live camera sends frames at that rate (capture time = send time) and
latency is measured at the consumer, as a dispatch console sees it. With --fps 0 the
whole input is published before the flow starts: the time to drain it is throughput.
Every plate is on a hotlist, so every pass yields an alert and a latency sample.

Two throughputs: `frames_per_s` is the frames over the span between the first and the
last read published; a read comes out when its pass closes, up to a pass gap (2 s) after
its last frame, so on a short run that span carries seconds that are not work.
`drained_frames_per_s` (--fps 0) is the frames over the span from the first frame taken
to the last frame done, from the processes' own /metrics counters, polled every 0.1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import redis
from confluent_kafka import Consumer, TopicPartition

from alpr.launcher import FlowTopics, flow_env, start_flow_processes, stop_processes
from benchmarks.frame_progress import FrameProgress
from connectors.kafka import make_producer
from hotlists.store import HotlistStore
from kernel.contracts import Alert, HotlistEntry, HotlistSource
from sim.local_services import LocalKafka, LocalRedis, free_port_run
from sim.synthetic_camera import (
    ConditionsName,
    camera_partitions,
    generate_passes,
    iter_frames,
    publish_frames,
)

PARTITIONS = 8


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def services(kafka: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    with contextlib.ExitStack() as stack:
        kafka = kafka or stack.enter_context(LocalKafka()).bootstrap
        redis_url = redis_url or stack.enter_context(LocalRedis()).url
        yield kafka, redis_url


ALERT_GRACE_S = 3.0


def run(args: argparse.Namespace) -> dict:
    cameras = [f"cam-{i + 1}" for i in range(args.cameras)]
    # Live: space each camera's frames so that all cameras together send --fps, so the
    # capture times are the send times (otherwise sending lags the synthetic clock and
    # that lag would be counted as latency).
    interval = round(1000 * args.cameras / args.fps) if args.fps > 0 else 200
    passes = generate_passes(args.passes, args.frames_per_pass, seed=args.seed,
                             cameras=cameras, conditions=args.conditions,
                             frame_interval_ms=interval)
    frames = list(iter_frames(passes))
    with services(args.kafka, args.redis) as (bootstrap, redis_url):
        store = HotlistStore(redis.Redis.from_url(redis_url))
        store.replace_source(HotlistSource.LOCAL, [
            HotlistEntry(plate=p.plate, source=HotlistSource.LOCAL, reason="benchmark",
                         entry_id=f"B{i}") for i, p in enumerate(passes)])
        topics = FlowTopics.unique("bench")
        topics.create(bootstrap, partitions=PARTITIONS)
        producer = make_producer(bootstrap)
        env = flow_env(bootstrap, redis_url, topics, ALPR_TAIL="true")
        # Each camera on its own partition, as a camera gateway should (README).
        where = camera_partitions(cameras, PARTITIONS)
        if args.fps <= 0:  # backlog first: the flow's drain time is its throughput
            publish_frames(producer, topics.frames, frames, rewrite_time=True, partitions=where)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(t, p, 0) for t in (topics.reads, topics.alerts)
                         for p in range(PARTITIONS)])
        progress = None
        if args.fps <= 0:
            metrics_port = free_port_run(args.processes)
            env["ALPR_METRICS_PORT"] = str(metrics_port)
            progress = FrameProgress(metrics_port, args.processes)
        procs = start_flow_processes(env, workers=args.workers, processes=args.processes)
        started = time.monotonic()
        if progress:
            progress.start()
        sender = None
        if args.fps > 0:
            sender = threading.Thread(target=publish_frames, daemon=True, kwargs=dict(
                producer=producer, topic=topics.frames, frames=frames, rate_fps=args.fps,
                rewrite_time=True, partitions=where))
            sender.start()
        read_times: list[float] = []
        latencies: list[float] = []
        since_first_seen: list[float] = []
        alert_ids: set[str] = set()
        deadline = started + args.timeout
        # Alerts go to their own topic just after their read: once every read is in, wait
        # a little longer for the last alerts instead of counting them as missing.
        grace_until = float("inf")
        try:
            while time.monotonic() < min(deadline, grace_until):
                if len(read_times) >= len(passes) and grace_until == float("inf"):
                    grace_until = time.monotonic() + ALERT_GRACE_S
                dead = [p.returncode for p in procs if p.poll() is not None]
                if dead and len(read_times) < len(passes):
                    # ALPR_TAIL=true: a flow process never ends by itself; don't wait out
                    # --timeout for reads that can no longer come.
                    raise RuntimeError(f"a flow process died (exit codes {dead})")
                msg = consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                now_ms = time.time() * 1000
                if msg.topic() == topics.reads:
                    read_times.append(time.monotonic())
                else:
                    alert = Alert.model_validate_json(msg.value())
                    if alert.alert_id not in alert_ids:
                        alert_ids.add(alert.alert_id)
                        latencies.append(now_ms - alert.read.last_seen)
                        since_first_seen.append(now_ms - alert.read.first_seen)
        finally:
            if progress:
                progress.stop()
            stop_processes(procs)
            consumer.close()
    span = (read_times[-1] - read_times[0]) if len(read_times) > 1 else float("nan")
    share = (len(read_times) - 1) / len(read_times) if read_times else 0
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''} cores="
                   f"{__import__('os').cpu_count()}".strip(),
        "fps_offered": args.fps, "workers": args.workers, "processes": args.processes,
        "cameras": args.cameras, "passes": len(passes), "frames": len(frames),
        "conditions": args.conditions,
        "reads": len(read_times), "alerts": len(alert_ids),
        "frames_per_s": round(len(frames) * share / span, 2) if span == span else None,
        "drained_frames_per_s": progress.frames_per_s(len(frames)) if progress else None,
        "busy_s_per_process": progress.busy_s() if progress else None,
        "reads_per_s": round((len(read_times) - 1) / span, 2) if span == span else None,
        "latency_ms_p50": round(percentile(latencies, 50)),
        "latency_ms_p99": round(percentile(latencies, 99)),
        "first_seen_to_alert_ms_p50": round(percentile(since_first_seen, 50)),
        "mean_latency_ms": round(statistics.fmean(latencies)) if latencies else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fps", type=float, default=8.0, help="offered frame rate; 0 = backlog")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--passes", type=int, default=40)
    parser.add_argument("--frames-per-pass", type=int, default=5)
    parser.add_argument("--conditions", default="typical",
                        choices=get_args(ConditionsName))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--kafka", help="use this broker instead of starting tansu")
    parser.add_argument("--redis", help="use this Redis URL instead of starting one")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    result = run(args)
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
