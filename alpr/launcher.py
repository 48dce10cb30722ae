"""Running the dataflow as bytewax processes: for the demo, the end-to-end tests and the
pipeline benchmark."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from bytewax.recovery import init_db_dir

from connectors.kafka import ensure_topics
from flows.frames_source import topic_state_folder
from kernel.ports import free_port
from kernel.settings import Settings, Topics
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
        # A replay of the whole topic, from nothing saved (tests, benchmarks): a run
        # that wants recovery passes ALPR_RECOVERY_DIR.
        "ALPR_RECOVERY_DIR": "",
        "ALPR_START_LOOKBACK_S": "0",
        "ALPR_METRICS_PORT": "0",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def process_env(env: dict[str, str], index: int) -> dict[str, str]:
    """`env` for process `index` of a cluster on one host: its /metrics on
    ALPR_METRICS_PORT + index, since one port serves only one process (0 stays off)."""
    port = int(env.get("ALPR_METRICS_PORT", Settings.model_fields["metrics_port"].default))
    if port <= 0:
        return env
    return {**env, "ALPR_METRICS_PORT": str(port + index)}


# bytewax recovery partitions (sqlite files); any number of workers share them.
RECOVERY_PARTITIONS = 4


def _setting(env: dict[str, str], name: str) -> str:
    field = name.removeprefix("ALPR_").lower()
    default = Settings.model_fields[field].default
    return env.get(name, str(default))


def recovery_args(env: dict[str, str]) -> list[str]:
    """bytewax's recovery arguments for a flow run with `env`, its folder made and
    initialised first if new (none if ALPR_RECOVERY_DIR is empty).

    The launcher initialises the folder once, before any process starts: processes
    initialising it themselves would race (one reading partitions half made by the
    other). It is made under a temporary name and renamed into place, so a launcher
    killed half-way leaves no half-initialised folder either.
    """
    folder = topic_state_folder(_setting(env, "ALPR_RECOVERY_DIR"),
                                env.get("ALPR_TOPIC_FRAMES", Topics().frames))
    if folder is None:
        return []
    snapshot_s = float(_setting(env, "ALPR_SNAPSHOT_INTERVAL_S"))
    if snapshot_s <= 0:
        raise ValueError(f"ALPR_SNAPSHOT_INTERVAL_S must be > 0, got {snapshot_s:g}")
    db = folder / "bytewax"
    if not any(db.glob("part-*.sqlite3")):
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".bytewax-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        staging.mkdir()
        init_db_dir(staging, RECOVERY_PARTITIONS)
        if db.exists():  # an empty leftover folder
            db.rmdir()
        staging.rename(db)
    # Backup interval 0: the folder is not copied elsewhere, so old snapshots need not
    # be kept.
    return ["-r", str(db), "-s", f"{snapshot_s:g}", "-b", "0"]


def start_flow_processes(env: dict[str, str], workers: int = 1, processes: int = 1,
                         log: IO[bytes] | int | None = subprocess.PIPE,
                         extra_args: Sequence[str] = ()) -> list[subprocess.Popen]:
    """Start the flow as `processes` bytewax processes of `workers` workers each, one
    cluster on this host; process i serves /metrics on ALPR_METRICS_PORT + i, all with
    recovery in ALPR_RECOVERY_DIR unless it is empty (`recovery_args`). `log=None`
    passes their output through."""
    base = [*FLOW_COMMAND, "-w", str(workers), *recovery_args(env), *extra_args]
    if processes == 1:
        commands: Sequence[list[str]] = [base]
    else:
        addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
        commands = [[*base, "-i", str(i), "-a", addresses] for i in range(processes)]
    return [
        subprocess.Popen(c, env=process_env(env, i), cwd=ROOT, stdout=log,
                         stderr=subprocess.STDOUT,
                         start_new_session=True)  # Ctrl-C goes to the caller, who stops us
        for i, c in enumerate(commands)
    ]


def wait_until_ready(procs: Sequence[subprocess.Popen], env: dict[str, str],
                     timeout_s: float = 90.0) -> float | None:
    """Wait until every flow process started with `env` reports alpr_flow_ready 1 on its
    /metrics (its recogniser loaded): the seconds it took, or None if the metrics are off,
    a process ended, or `timeout_s` passed (the caller goes on; frames just queue)."""
    port = int(env.get("ALPR_METRICS_PORT", "0"))
    if port <= 0:
        return None
    started = time.monotonic()
    waiting = {port + i for i in range(len(procs))}
    while waiting and time.monotonic() - started < timeout_s:
        if any(p.poll() is not None for p in procs):
            return None
        for each in sorted(waiting):
            with contextlib.suppress(OSError):
                url = f"http://127.0.0.1:{each}/metrics"
                body = urllib.request.urlopen(url, timeout=1).read().decode()
                if "\nalpr_flow_ready 1.0" in body:
                    waiting.discard(each)
        if waiting:
            time.sleep(0.2)
    return None if waiting else time.monotonic() - started


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


def _exit_code(returncode: int) -> int:
    # Popen gives -N for "killed by signal N"; a shell would say 128 + N.
    return 128 - returncode if returncode < 0 else returncode


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """Record SIGTERM/SIGINT instead of dying: the children run in their own sessions, so
    the launcher must stop them itself (and as PID 1 in a container, SIGTERM would
    otherwise be ignored)."""
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def supervise(procs: Sequence[subprocess.Popen], stop_requested: Sequence[int] = (),
              poll_s: float = 0.2, grace_s: float = 30) -> int:
    """Wait for a cluster's processes; the exit code for the whole of it.

    The processes of one cluster only work together: when one fails, the others are
    stopped and its code returned (never 0), rather than leaving a half cluster that
    holds its partitions and reads nothing. One ending cleanly (end of input with
    ALPR_TAIL=false) gives the others `grace_s` to end too. A signal number appearing in
    `stop_requested` stops all and returns 128 + it.
    """
    first_clean_exit: float | None = None
    while True:
        if stop_requested:
            stop_processes(procs)
            return 128 + stop_requested[0]
        codes = [p.poll() for p in procs]
        failed = [(i, c) for i, c in enumerate(codes) if c]
        if failed:
            index, code = failed[0]
            print(f"alpr flow: process {index} exited with {code}; stopping the others",
                  file=sys.stderr, flush=True)
            stop_processes(procs)
            return _exit_code(code) or 1
        if all(c == 0 for c in codes):
            return 0
        if first_clean_exit is None and 0 in codes:
            first_clean_exit = time.monotonic()
        if first_clean_exit is not None and time.monotonic() - first_clean_exit > grace_s:
            print(f"alpr flow: process {codes.index(0)} ended but others still run "
                  f"after {grace_s:g} s; stopping them", file=sys.stderr, flush=True)
            stop_processes(procs)
            return 1
        time.sleep(poll_s)


def launch(env: dict[str, str], processes: int = 1, workers: int = 1,
           extra_args: Sequence[str] = ()) -> int:
    """`alpr flow`: run the cluster in the foreground, its output passed through, until
    it ends, fails or is signalled; returns the exit code. Main thread only (signals)."""
    folder = topic_state_folder(_setting(env, "ALPR_RECOVERY_DIR"),
                                env.get("ALPR_TOPIC_FRAMES", Topics().frames))
    if folder is None:
        print("alpr flow: recovery off (ALPR_RECOVERY_DIR empty): a restart starts "
              f"{_setting(env, 'ALPR_START_LOOKBACK_S')} s back", file=sys.stderr, flush=True)
    else:
        print(f"alpr flow: recovery in {folder}, a snapshot every "
              f"{_setting(env, 'ALPR_SNAPSHOT_INTERVAL_S')} s", file=sys.stderr, flush=True)
    with _stop_signals() as received:
        try:
            procs = start_flow_processes(env, workers, processes, log=None,
                                         extra_args=extra_args)
        except (OSError, ValueError) as exc:
            print(f"error: alpr flow: cannot prepare the recovery folder {folder}: {exc}",
                  file=sys.stderr, flush=True)
            return 2
        for i, proc in enumerate(procs):
            port = int(process_env(env, i).get("ALPR_METRICS_PORT", "0"))
            where = f"/metrics on :{port}" if port > 0 else "no /metrics"
            print(f"alpr flow: process {i} of {processes} (pid {proc.pid}, "
                  f"{workers} worker(s)), {where}", file=sys.stderr, flush=True)
        return supervise(procs, received)
