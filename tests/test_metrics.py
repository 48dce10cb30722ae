"""The /metrics endpoint serves names Prometheus accepts (checked by promtool itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request

import bytewax.connectors.kafka  # noqa: F401  (its metrics share the registry in a flow process)
import pytest

from alpr import metrics
from connectors.local_services import free_port


def _promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("promtool missing in CI: `make test` installs it into .venv/bin")
    pytest.skip("promtool not installed (make test fetches it from Debian's prometheus package)")


def test_metrics_endpoint_passes_promtool() -> None:
    # Touch every labelled metric so its series appear in the exposition.
    metrics.FRAMES_IN.labels("cam-1").inc()
    metrics.FRAME_DECODE_FAILURES.labels("corrupt_jpeg").inc()
    metrics.RECOGNITION_SECONDS.observe(0.12)
    metrics.FRAMES_SKIPPED.labels("unchanged").inc()
    metrics.READS.labels("cam-1").inc()
    metrics.PASSES_CLOSED.labels("idle").inc()
    metrics.HOTLIST_HITS.labels("NCIC").inc()
    metrics.ALERTS.labels("NCIC").inc()
    metrics.DEAD_LETTERS.labels("corrupt_jpeg").inc()
    metrics.CAPTURE_TO_ALERT_SECONDS.observe(0.4)
    metrics.RECOGNIZER_LOADS.inc()
    metrics.READY.set(1)
    port = free_port()
    assert metrics.serve_metrics(port, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    for name in ("alpr_frames_in_total", "alpr_frame_decode_failures_total",
                 "alpr_recognition_seconds_bucket", "alpr_reads_total",
                 "alpr_hotlist_lookups_total", "alpr_hotlist_hits_total", "alpr_alerts_total",
                 "alpr_dead_letters_total", "alpr_capture_to_alert_seconds_bucket",
                 "alpr_passes_closed_total", "alpr_frames_skipped_total"):
        assert name.encode() in body, name
    check = subprocess.run([_promtool(), "check", "metrics"], input=body,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
