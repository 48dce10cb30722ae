"""The SRE dashboard (deploy/grafana) against the code and a real Prometheus.

Fed: the dashboard JSON; a real flow process (the bytewax flow as deployed) reading
synthetic camera frames (one plate listed, a repeated frame, a corrupt frame) from a
real broker; Debian's Prometheus binary scraping that process's /metrics every second.
Must survive: every panel's query returns at least one series, and no panel names a
metric the code does not export (a renamed metric breaks this test, not a dashboard
nobody looks at).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY
from tool_paths import find_tool

import flows.metrics  # noqa: F401 - registers the flow's metrics
from alpr.launcher import (
    FlowTopics,
    flow_env,
    start_flow_processes,
    stop_processes,
    wait_until_ready,
)
from connectors.kafka import make_producer, read_all
from hotlists.store import HotlistStore
from kernel.contracts import HotlistEntry, HotlistSource
from kernel.ports import free_port
from sim.synthetic_camera import generate_passes, iter_frames, publish_frames

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "alpr-sre.json"
RATE_INTERVAL = "1m"  # what Grafana's $__rate_interval stands for here


def _queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def _exported() -> set[str]:
    names = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    for family in REGISTRY.collect():
        # Labelled metrics have no samples until first used: their names by type.
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


def test_every_panel_names_only_metrics_the_code_exports() -> None:
    exported = _exported()
    named = {m for _, expr in _queries() for m in re.findall(r"\balpr_[a-z0-9_]+", expr)}
    assert named and not named - exported, f"not exported: {sorted(named - exported)}"
    titles = " ".join(t for t, _ in _queries()).lower()
    for topic in ("frames in", "skipped", "recognition", "capture to alert", "queue age",
                  "lookups", "hits and alerts", "dead letters", "passes closed", "readiness"):
        assert topic in titles, topic


def _prometheus() -> str:
    return find_tool("prometheus", env="PROMETHEUS", marker="prometheus-missing",
                     how="extracts Debian's prometheus package into .venv/bin")


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.loads(urllib.request.urlopen(url, timeout=5).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.slow
def test_every_panel_query_returns_a_series_from_a_real_flow(
        kafka: str, redis_server: Any, tmp_path: Path) -> None:
    prometheus = _prometheus()
    passes = generate_passes(3, 4, seed=5, conditions="clean", cameras=("cam-a", "cam-b"))
    db = redis.Redis.from_url(redis_server.url_for(3))
    db.flushdb()
    HotlistStore(db).replace_source(HotlistSource.NCIC, [HotlistEntry(
        plate=passes[0].plate, source=HotlistSource.NCIC, reason="dashboard test",
        entry_id="D1")])
    topics = FlowTopics.unique("dash")
    topics.create(kafka)
    metrics_port = free_port()
    env = flow_env(kafka, redis_server.url_for(3), topics, ALPR_TAIL="true",
                   ALPR_METRICS_PORT=str(metrics_port))
    log = (tmp_path / "flow.log").open("wb")
    procs = start_flow_processes(env, 1, 1, log=log)
    prom: subprocess.Popen[bytes] | None = None
    try:
        assert wait_until_ready(procs, env, timeout_s=120) is not None, (
            (tmp_path / "flow.log").read_text()[-2000:])
        producer = make_producer(kafka)
        frames = list(iter_frames(passes))
        publish_frames(producer, topics.frames, frames)
        publish_frames(producer, topics.frames, frames[-1:])  # the same frame: skipped
        like = frames[0]
        producer.produce(topics.frames, key=like.camera_id.encode(),
                         value=like.jpeg[:200] + bytes(2000),  # a corrupt JPEG
                         headers={"camera_id": like.camera_id, "captured_at": str(
                             like.captured_at + 1), "frame_id": "corrupt",
                             "schema_version": "1"})
        producer.flush(30)
        assert read_all(kafka, topics.alerts, expect=1, timeout=120), "no alert"

        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n  - job_name: alpr-flow\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{metrics_port}']\n")
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prom.log").open("wb"))
        pending = {expr: title for title, expr in _queries()}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            time.sleep(1)
            for expr in list(pending):
                try:
                    if _query(prom_port, expr.replace("$__rate_interval", RATE_INTERVAL)):
                        del pending[expr]
                except OSError:
                    break  # Prometheus still starting
        assert not pending, f"panels without a series: {pending}"
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        stop_processes(procs)
        log.close()
