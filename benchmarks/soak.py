"""Soak: the flow's memory over a steady run, as deployed (`alpr flow`'s layout: N
processes of one worker, recovery on, tail mode).

    python -m benchmarks.soak --minutes 10 --fps 2.9 --json soak.json
    python -m benchmarks.soak --minutes 120 --fps 2.9        # the 2-hour soak

A live synthetic camera feed (each camera on its own partition, half the plates listed)
at --fps in all; every --sample-s the RSS of each flow process (/proc/PID/status VmRSS),
frames consumed (their /metrics), reads and alerts published. Prints a table and the RSS
growth per process over the second half of the run (the first is warm-up: arenas,
caches), in MB/min and as a share of the half's first sample: flat means within 10%.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import redis
from confluent_kafka import Consumer, TopicPartition

from alpr.launcher import FlowTopics, flow_env, start_flow_processes, stop_processes
from benchmarks.pipeline import services
from connectors.kafka import make_producer
from hotlists.store import HotlistStore
from kernel.contracts import HotlistEntry, HotlistSource
from sim.local_services import free_port_run
from sim.synthetic_camera import camera_partitions, iter_frames, iter_passes, publish_frames


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def frames_in(port: int) -> float:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return float("nan")
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("alpr_frames_in_total{"))


def _camera(bootstrap: str, topic: str, cameras: list[str], fps: float, seed: int,
            stop: threading.Event, partitions: int) -> None:
    producer = make_producer(bootstrap)
    where = camera_partitions(cameras, partitions)
    interval = round(1000 * len(cameras) / fps)
    n = 0
    while not stop.is_set():  # batches of passes, so that nothing big is held in memory
        passes = iter_passes(20, 5, seed=seed + n, cameras=cameras, conditions="typical",
                             frame_interval_ms=interval)
        for frame in iter_frames(list(passes)):
            if stop.is_set():
                return
            publish_frames(producer, topic, [frame], rewrite_time=True, partitions=where)
            stop.wait(1 / fps)
        n += 1


def growth(samples: list[dict], key: str) -> tuple[float, float]:
    """MB/min and share of growth of `key` over the second half of the samples."""
    half = [s for s in samples[len(samples) // 2:] if s[key] is not None]
    if len(half) < 2:
        return float("nan"), float("nan")
    minutes = (half[-1]["t_s"] - half[0]["t_s"]) / 60
    delta = half[-1][key] - half[0][key]
    return delta / max(minutes, 1e-9), delta / half[0][key]


def run(args: argparse.Namespace) -> dict:
    cameras = [f"cam-{i + 1}" for i in range(args.cameras)]
    with services(args.kafka, args.redis) as (bootstrap, redis_url):
        store = HotlistStore(redis.Redis.from_url(redis_url))
        # Half of every batch's plates listed (the camera draws them from the same seeds).
        listed = [p for n in range(int(args.minutes * 60 * args.fps / 100) + 2)
                  for p in list(iter_passes(20, 1, seed=args.seed + n, cameras=cameras))[::2]]
        store.replace_source(HotlistSource.LOCAL, [
            HotlistEntry(plate=p.plate, source=HotlistSource.LOCAL, reason="soak",
                         entry_id=f"S{i}") for i, p in enumerate(listed)])
        topics = FlowTopics.unique("soak")
        topics.create(bootstrap, partitions=args.cameras)
        port = free_port_run(args.processes)
        recovery = tempfile.mkdtemp(prefix="alpr-soak-")
        env = flow_env(bootstrap, redis_url, topics, ALPR_TAIL="true",
                       ALPR_METRICS_PORT=str(port), ALPR_RECOVERY_DIR=recovery,
                       ALPR_START_LOOKBACK_S="300")
        log = Path(recovery) / "flow.log"
        procs = start_flow_processes(env, workers=1, processes=args.processes,
                                     log=log.open("wb"))
        stop = threading.Event()
        camera = threading.Thread(target=_camera, daemon=True, args=(
            bootstrap, topics.frames, cameras, args.fps, args.seed, stop, args.cameras))
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "soak",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(t, p, 0) for t in (topics.reads, topics.alerts)
                         for p in range(args.cameras)])
        counts = {"reads": 0, "alerts": 0}
        samples: list[dict] = []
        started = time.monotonic()
        camera.start()
        next_sample = started
        try:
            while time.monotonic() - started < args.minutes * 60 + 1:
                dead = [p.returncode for p in procs if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"a flow process died ({dead}): {log}")
                if time.monotonic() >= next_sample:
                    sample = {"t_s": round(time.monotonic() - started),
                              "frames_in": sum(frames_in(port + i)
                                               for i in range(args.processes)),
                              **counts}
                    for i, proc in enumerate(procs):
                        sample[f"rss_mb_p{i}"] = rss_mb(proc.pid)
                    samples.append(sample)
                    print(" ".join(f"{k}={v:.0f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in sample.items()), flush=True)
                    next_sample += args.sample_s
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error():
                    counts["reads" if msg.topic() == topics.reads else "alerts"] += 1
        finally:
            stop.set()
            stop_processes(procs)
            consumer.close()
    result = {
        "benchmark": "soak", "minutes": args.minutes, "fps": args.fps,
        "cameras": args.cameras, "processes": args.processes, "samples": samples,
        "machine": platform.processor() or platform.machine(),
    }
    for i in range(args.processes):
        per_min, share = growth(samples, f"rss_mb_p{i}")
        result[f"rss_growth_mb_per_min_p{i}"] = round(per_min, 2)
        result[f"rss_growth_share_p{i}"] = round(share, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--fps", type=float, default=2.9)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--sample-s", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kafka")
    parser.add_argument("--redis")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args)
    print(f"\n{'t (s)':>6} {'frames':>7} {'reads':>6} {'alerts':>6} " + " ".join(
        f"{'RSS p' + str(i) + ' MB':>11}" for i in range(args.processes)))
    for s in result["samples"]:
        print(f"{s['t_s']:>6} {s['frames_in']:>7.0f} {s['reads']:>6} {s['alerts']:>6} "
              + " ".join(f"{s[f'rss_mb_p{i}'] or float('nan'):>11.0f}"
                         for i in range(args.processes)))
    for i in range(args.processes):
        print(f"process {i}: second half {result[f'rss_growth_mb_per_min_p{i}']:+.2f} MB/min "
              f"({100 * result[f'rss_growth_share_p{i}']:+.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
