"""Prometheus metrics of the flow, served at /metrics by each flow process."""

from __future__ import annotations

import logging
import threading

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

FRAMES_IN = Counter("alpr_frames_in_total", "Frames consumed from the frames topic", ["camera"])
FRAME_DECODE_FAILURES = Counter(
    "alpr_frame_decode_failures_total", "Frames rejected before recognition", ["reason"]
)
# Every frame, alerting or not: a backlog shows here before any alert is late (cameras'
# clocks against this host's: a drifting camera shows as a constant offset).
FRAME_AGE_SECONDS = Histogram(
    "alpr_frame_age_seconds",
    "From a frame's capture to the flow starting to read it (time queued)",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
RECOGNITION_SECONDS = Histogram(
    "alpr_recognition_seconds",
    "Time to detect and read plates in one frame",
    buckets=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0),
)
FRAMES_SKIPPED = Counter(
    "alpr_frames_skipped_total", "Frames not recognised: nothing new to read", ["reason"]
)
DETECTED_SHARE = Histogram(
    "alpr_detected_frame_share",
    "Share of a recognised frame's lane view the detector looked at (where it moved)",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0),
)
PLATE_CANDIDATES = Counter("alpr_plate_candidates_total", "Per-frame plate reads kept")
READS = Counter("alpr_reads_total", "Vehicle-pass reads published", ["camera"])
PASSES_CLOSED = Counter("alpr_passes_closed_total", "Vehicle passes closed", ["cause"])
HOTLIST_LOOKUPS = Counter("alpr_hotlist_lookups_total", "Reads looked up in the hotlists")
HOTLIST_HITS = Counter("alpr_hotlist_hits_total", "Hotlist entries matched", ["source"])
HOTLIST_LOOKUP_FAILURES = Counter(
    "alpr_hotlist_lookup_failures_total", "Hotlist lookups that failed (Redis unreachable)"
)
HOTLIST_PARKED = Gauge(
    "alpr_hotlist_parked_reads",
    "Alertable reads whose hotlist join waits for Redis or for a vanished list to return",
)
HOTLIST_PARKED_DROPPED = Counter(
    "alpr_hotlist_parked_dropped_total",
    "Parked reads dropped unjoined: more than ALPR_HOTLIST_PARKED_MAX were waiting",
)
HOTLIST_SOURCE_OUTAGES = Counter(
    "alpr_hotlist_source_outages_total",
    "Times a hotlist this process saw serving vanished from Redis (no version, no entries)",
    ["source"],
)
HOTLIST_SOURCE_MISSING = Gauge(
    "alpr_hotlist_source_missing",
    "1 while a hotlist this process saw serving is missing or empty in Redis",
    ["source"],
)
FRAMES_REPLAYED = Counter(
    "alpr_frames_replayed_total",
    "Frames read again after a restart or crash (their records are marked replayed)",
)
ALERTS = Counter("alpr_alerts_total", "Verification-required alerts produced", ["source"])
DEAD_LETTERS = Counter("alpr_dead_letters_total", "Messages sent to dead letters", ["reason"])
# Once per worker in a healthy flow: a count that keeps rising means models are being
# reloaded (as they were every few seconds before flows/worker_thread.py).
RECOGNIZER_LOADS = Counter("alpr_recognizer_loads_total", "Plate recognisers loaded")
READY = Gauge("alpr_flow_ready", "1 once this flow process has its recogniser loaded")
CAPTURE_TO_ALERT_SECONDS = Histogram(
    "alpr_capture_to_alert_seconds",
    "From the capture of the frame that completed a read to the alert being produced",
    buckets=_LATENCY_BUCKETS,
)

_server_lock = threading.Lock()
_server_started = False


def serve_metrics(port: int, addr: str = "0.0.0.0") -> bool:
    """Start the /metrics endpoint once per process. False if disabled or the port is
    taken (another flow process on this host already serves it)."""
    global _server_started
    with _server_lock:
        if _server_started or port <= 0:
            return _server_started
        try:
            start_http_server(port, addr=addr)
        except OSError as exc:
            log.warning("metrics endpoint not started on port %s: %s", port, exc)
            return False
        _server_started = True
        return True
