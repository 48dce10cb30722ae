"""`alpr flow --processes N`: one cluster of N single-worker processes, as docker-compose
runs it, against the real test broker and Redis.

Fed: 2 cameras, each on its own partition of a 2-partition frames topic (so each process
owns one), 2 clean vehicle passes of 5 frames each. Must hold: each process consumes and
recognises frames and serves them on its own /metrics port (base, base + 1); the reads of
both cameras come out; SIGTERM stops the whole cluster. And a process dying takes the
launcher down with a non-zero code and the other process with it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alpr.launcher import ROOT, FlowTopics, flow_env, wait_until_ready
from connectors.kafka import make_producer, read_all
from sim.local_services import free_port_run
from sim.synthetic_camera import (
    camera_partitions,
    generate_passes,
    iter_frames,
    publish_frames,
)

pytestmark = pytest.mark.slow

CAMERAS = ("cam-a", "cam-b")
PASSES, FRAMES_PER_PASS = 4, 5


def _metrics(port: int) -> dict[str, float] | None:
    """Sample name -> value summed over labels; None while the endpoint is not up."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _start_launcher(env: dict[str, str], log: Path, processes: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "alpr.cli", "flow", "--processes", str(processes)],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _child_pids(log: Path, processes: int, timeout: float = 15) -> dict[int, int]:
    """Process index -> pid, from the launcher's start-up lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(r"alpr flow: process (\d+) of \d+ \(pid (\d+)", log.read_text())
        if len(found) == processes:
            return {int(i): int(pid) for i, pid in found}
        time.sleep(0.1)
    raise AssertionError(f"launcher did not report its processes:\n{log.read_text()}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def launcher_stop() -> Iterator[list[subprocess.Popen]]:
    """Launchers a test started; killed (with their process group) if the test failed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_two_processes_both_process_frames_and_serve_metrics(
    kafka: str, redis_server, tmp_path: Path, launcher_stop: list[subprocess.Popen]
) -> None:
    topics = FlowTopics.unique("launch")
    topics.create(kafka, partitions=len(CAMERAS))
    passes = generate_passes(PASSES, FRAMES_PER_PASS, seed=3, conditions="clean",
                             cameras=CAMERAS)
    sent = publish_frames(make_producer(kafka), topics.frames, iter_frames(passes),
                          partitions=camera_partitions(CAMERAS, len(CAMERAS)))
    base = free_port_run(2)
    # Tail as deployed: the cluster keeps running, so its endpoints can be read.
    env = flow_env(kafka, redis_server.url, topics, ALPR_TAIL="true",
                   ALPR_METRICS_PORT=str(base))
    log = tmp_path / "launcher.log"
    launcher = _start_launcher(env, log)
    launcher_stop.append(launcher)
    pids = _child_pids(log, 2)
    # Process 0 says it is ready (its recogniser loaded) on its /metrics.
    assert wait_until_ready([launcher], {"ALPR_METRICS_PORT": str(base)}, 45) is not None, (
        log.read_text()[-3000:])

    per_port: dict[int, dict[str, float] | None] = {}
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        assert launcher.poll() is None, log.read_text()[-3000:]
        per_port = {port: _metrics(port) for port in (base, base + 1)}
        counted = [m.get("alpr_frames_in_total", 0) for m in per_port.values() if m]
        if len(counted) == 2 and sum(counted) >= sent:
            break
        time.sleep(0.5)
    for port, values in per_port.items():
        assert values is not None, f"no /metrics on {port}:\n{log.read_text()[-3000:]}"
        # Each process read its camera's partition and ran the recogniser on it.
        assert values.get("alpr_frames_in_total", 0) > 0, (port, values)
        assert values.get("alpr_recognition_seconds_count", 0) > 0, (port, values)
        # Ready, and one recogniser loaded for the whole run: a worker's models are not
        # reloaded (flows/worker_thread.py) and the one preloaded at start is used.
        assert values.get("alpr_flow_ready") == 1, (port, values)
        assert values.get("alpr_recognizer_loads_total") == 1, (port, values)
    assert sum(m.get("alpr_frames_in_total", 0) for m in per_port.values() if m) == sent

    reads = read_all(kafka, topics.reads, expect=PASSES, timeout=20, idle=10)
    assert {r.key.decode() for r in reads} == set(CAMERAS)

    launcher.send_signal(15)
    assert launcher.wait(20) == 128 + 15
    assert all(_gone(pid) for pid in pids.values())


def test_a_process_dying_stops_the_cluster_with_an_error(
    kafka: str, redis_server, tmp_path: Path, launcher_stop: list[subprocess.Popen]
) -> None:
    topics = FlowTopics.unique("launch-die")
    topics.create(kafka, partitions=2)
    env = flow_env(kafka, redis_server.url, topics, ALPR_TAIL="true", ALPR_METRICS_PORT="0")
    log = tmp_path / "launcher.log"
    launcher = _start_launcher(env, log)
    launcher_stop.append(launcher)
    pids = _child_pids(log, 2)
    time.sleep(1)
    assert launcher.poll() is None, log.read_text()[-3000:]

    os.kill(pids[1], 9)
    code = launcher.wait(30)
    # Usually 137 (process 1's SIGKILL); process 0 may fail first on losing its peer.
    assert code not in (0, None), log.read_text()[-3000:]
    assert re.search(r"process \d exited with -?\d+; stopping the others", log.read_text())
    assert _gone(pids[0])
