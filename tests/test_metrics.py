"""The /metrics endpoint serves names Prometheus accepts (checked by promtool itself)."""

from __future__ import annotations

import subprocess
import urllib.request

import bytewax.connectors.kafka  # noqa: F401  (its metrics share the registry in a flow process)
from tool_paths import find_tool

from flows import metrics
from sim.local_services import free_port


def _promtool() -> str:
    return find_tool("promtool", env="PROMTOOL", marker="prometheus-missing",
                     how="extracts Debian's prometheus package into .venv/bin")


def test_metrics_endpoint_passes_promtool() -> None:
    # Touch every labelled metric so its series appear in the exposition.
    metrics.FRAMES_IN.labels("cam-1").inc()
    metrics.FRAME_DECODE_FAILURES.labels("corrupt_jpeg").inc()
    metrics.RECOGNITION_SECONDS.observe(0.12)
    metrics.FRAME_AGE_SECONDS.observe(0.3)
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
                 "alpr_passes_closed_total", "alpr_frames_skipped_total",
                 "alpr_frame_age_seconds_bucket"):
        assert name.encode() in body, name
    check = subprocess.run([_promtool(), "check", "metrics"], input=body,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_a_frame_is_counted_with_the_time_it_queued_since_capture() -> None:
    """Fed: a frame captured 5 s before the flow reads it, then a corrupt frame. Out: the
    first adds one frame of ~5 s to alpr_frame_age_seconds (the backlog signal that
    needs no alert to show); the corrupt one, which never gets to be read, adds none."""
    import time

    from bytewax.connectors.kafka import KafkaSourceMessage
    from prometheus_client import REGISTRY

    from flows.pipeline import process_message
    from kernel.settings import Settings
    from sim.synthetic_camera import frame_headers, generate_passes

    def age() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("alpr_frame_age_seconds_count") or 0.0
        return count, REGISTRY.get_sample_value("alpr_frame_age_seconds_sum") or 0.0

    (frame, *_) = generate_passes(1, 1, seed=5, cameras=["cam-age"])[0].frames
    captured = time.time_ns() // 1_000_000 - 5000
    settings = Settings(unchanged_frame_threshold=0)
    before = age()
    for value in (frame.jpeg, b"\xff\xd8 not a jpeg"):
        process_message(settings, KafkaSourceMessage(
            key=frame.camera_id.encode(), value=value, topic="alpr.frames", partition=0,
            offset=0, headers=frame_headers(frame, captured_at=captured)))
    count, total = (a - b for a, b in zip(age(), before, strict=True))
    assert count == 1
    assert 5.0 <= total < 5.0 + 60  # read within a minute of the call
