"""Running the dataflow as bytewax processes: for the demo, the end-to-end tests and the
pipeline benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from alpr.config import Topics
from connectors.kafka import ensure_topics
from connectors.local_services import free_port
from safeguards.policy import load_policy
from safeguards.retention import ensure_retention_topics

ROOT = Path(__file__).resolve().parents[1]
FLOW_COMMAND = [sys.executable, "-m", "bytewax.run", "flows.pipeline:build_flow"]


@dataclass(frozen=True)
class FlowTopics:
    frames: str
    reads: str
    alerts: str
    dead_letters: str

    @classmethod
    def unique(cls, prefix: str = "t") -> FlowTopics:
        """Fresh topic names, so runs never see each other's data (also on a real Kafka)."""
        tag = f"{prefix}-{uuid.uuid4().hex[:8]}"
        base = Topics()
        return cls(*(f"{tag}.{name}" for name in (base.frames, base.reads, base.alerts,
                                                  base.dead_letters)))

    def outputs(self, tag: str) -> FlowTopics:
        """Same frames topic, separate output topics: for comparing runs of one input."""
        return FlowTopics(self.frames, f"{self.reads}.{tag}", f"{self.alerts}.{tag}",
                          f"{self.dead_letters}.{tag}")

    def create(self, bootstrap: str, partitions: int = 4) -> None:
        """Create the topics; reads and alerts with the policy's retention (30 days)."""
        ensure_topics(bootstrap, [self.frames, self.dead_letters], partitions=partitions)
        ensure_retention_topics(bootstrap, load_policy(), [self.reads, self.alerts],
                                partitions=partitions)


def flow_env(bootstrap: str, redis_url: str, topics: FlowTopics, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ALPR_KAFKA_BOOTSTRAP": bootstrap,
        "ALPR_REDIS_URL": redis_url,
        "ALPR_TOPIC_FRAMES": topics.frames,
        "ALPR_TOPIC_READS": topics.reads,
        "ALPR_TOPIC_ALERTS": topics.alerts,
        "ALPR_TOPIC_DEAD_LETTERS": topics.dead_letters,
        "ALPR_TAIL": "false",  # stop at the end of the input
        "ALPR_METRICS_PORT": "0",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def start_flow_processes(env: dict[str, str], workers: int = 1, processes: int = 1,
                         log: IO[bytes] | int = subprocess.PIPE) -> list[subprocess.Popen]:
    """Start the flow as `processes` bytewax processes of `workers` workers each."""
    base = [*FLOW_COMMAND, "-w", str(workers)]
    if processes == 1:
        commands: Sequence[list[str]] = [base]
    else:
        addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
        commands = [[*base, "-i", str(i), "-a", addresses] for i in range(processes)]
    return [
        subprocess.Popen(c, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)  # Ctrl-C goes to the caller, who stops us
        for c in commands
    ]


def stop_processes(procs: Sequence[subprocess.Popen], timeout: float = 10) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_flow(env: dict[str, str], workers: int = 1, processes: int = 1,
             timeout: float = 300) -> None:
    """Run the flow to the end of its input (ALPR_TAIL=false); raise with its output if
    it fails."""
    procs = start_flow_processes(env, workers, processes)
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout)
            outputs.append(out.decode(errors="replace"))
    finally:
        stop_processes(procs, timeout=1)
    failed = [(p.returncode, o) for p, o in zip(procs, outputs, strict=True) if p.returncode]
    if failed:
        code, out = failed[0]
        raise AssertionError(f"flow exited with {code}:\n{out[-4000:]}")
