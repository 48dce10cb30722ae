"""benchmarks.frame_progress: frames taken and done, read from a process's /metrics text
as the flow's own counters write it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from benchmarks.frame_progress import frame_counts


def test_frames_done_counts_each_frame_once() -> None:
    """Fed: the /metrics text of a process that took 7 frames: 3 recognised, 2 skipped
    as unchanged, 1 rejected by the decoder (a failure and its dead letter), 1 still being
    read. Out: 7 taken, 6 done (the rejected frame once, not twice)."""
    registry = CollectorRegistry()
    frames_in = Counter("alpr_frames_in_total", "", ["camera"], registry=registry)
    recognition = Histogram("alpr_recognition_seconds", "", registry=registry)
    skipped = Counter("alpr_frames_skipped_total", "", ["reason"], registry=registry)
    failures = Counter("alpr_frame_decode_failures_total", "", ["reason"], registry=registry)
    dead = Counter("alpr_dead_letters_total", "", ["reason"], registry=registry)
    frames_in.labels("cam-1").inc(4)
    frames_in.labels("cam-2").inc(3)
    for seconds in (0.08, 0.11, 0.3):
        recognition.observe(seconds)
    skipped.labels("unchanged").inc(2)
    failures.labels("bad_image").inc()
    dead.labels("bad_image").inc()
    assert frame_counts(generate_latest(registry).decode()) == (7.0, 6.0)


def test_no_counters_yet_is_nothing_done() -> None:
    assert frame_counts("") == (0.0, 0.0)
