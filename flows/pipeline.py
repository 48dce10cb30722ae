"""The dataflow: camera frames in Kafka -> plates -> vehicle passes -> hotlist alerts.

    alpr.frames --decode/validate--> recognise (PP-OCR, on the worker that consumed the
    partition) --key by camera--> vehicle passes (vote, dedupe) --batch--> Redis hotlist
    join --> alpr.reads, alpr.alerts;   anything unusable --> alpr.dead-letters

Run it with bytewax, as one or more workers and processes:

    python -m bytewax.run flows.pipeline:build_flow -w 2
    python -m bytewax.run flows.pipeline:build_flow -w 1 -i 0 -a "host:2101;host:2102"

Frames are keyed by camera, so one camera's frames stay in one partition and reach the
pass tracker in capture order; parallelism comes from the partitions (cameras spread over
them), which is what makes the output the same for any number of workers.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import cv2
import numpy as np
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.dataflow import Dataflow

from connectors.flow_sink import OutRecord, ReliableKafkaSink
from flows import metrics
from flows.frame_filter import UnchangedFrames, lane_view
from flows.frames import DecodedFrame, FrameRejected, RawFrame, dead_letter, decode_frame
from flows.frames_source import FrameMessage, FramesSource, progress_folder
from flows.hotlist_join import Backoff, HotlistJoin, Parked, SourceWatch
from flows.passes import Observation, PassPolicy, PassTracker
from flows.worker_thread import keep_thread_state
from hotlists.store import HotlistStore
from kernel.contracts import Alert, DeadLetter, FrameMeta, PlateRead
from kernel.redis_client import redis_from_url
from kernel.settings import Settings, get_settings
from recognizers import load_recognizer
from recognizers.base import Recognizer
from recognizers.frame_reader import read_frame

log = logging.getLogger(__name__)

CROP_HEIGHT_PX = 64  # enough for a person to compare the characters, ~2-4 KB as JPEG


class _WorkerResources(threading.local):
    """Per worker thread: its own recogniser session and Redis connection."""

    recognizer: Recognizer | None = None
    stores: dict[str, HotlistStore] | None = None  # by Redis URL
    unchanged: UnchangedFrames | None = None


_resources = _WorkerResources()
# Recognisers loaded by build_flow before the workers start, handed to the first workers
# that ask: a process's first frame then does not wait for the models.
_preloaded: list[Recognizer] = []
_preloaded_lock = threading.Lock()


def _worker() -> _WorkerResources:
    """This worker thread's resources. Its Python thread state is kept first: bytewax
    would delete it between steps, and these with it (flows/worker_thread.py)."""
    keep_thread_state()
    return _resources


def _recognizer(settings: Settings) -> Recognizer:
    worker = _worker()
    if worker.recognizer is None:
        with _preloaded_lock:
            preloaded = _preloaded.pop() if _preloaded else None
        worker.recognizer = preloaded or _load_recognizer(settings)
    return worker.recognizer


def _load_recognizer(settings: Settings) -> Recognizer:
    recognizer = load_recognizer(settings)
    metrics.RECOGNIZER_LOADS.inc()
    return recognizer


def preload_recognizer(settings: Settings) -> None:
    """Load one recogniser now, for the first worker of this process, and read one blank
    frame with it (the detector's runtime compiles on its first input); then report the
    process ready (alpr_flow_ready)."""
    recognizer = _load_recognizer(settings)
    read_frame(recognizer, np.full((720, 1280, 3), 127, np.uint8), settings)
    with _preloaded_lock:
        _preloaded.append(recognizer)
    metrics.READY.set(1)


def _store(settings: Settings) -> HotlistStore:
    worker = _worker()
    if worker.stores is None:
        worker.stores = {}
    store = worker.stores.get(settings.redis_url)
    if store is None:
        # A hung Redis times out like a dead one, so the join's parking covers both.
        client = redis_from_url(settings.redis_url, timeout_s=settings.redis_socket_timeout_s)
        store = worker.stores[settings.redis_url] = HotlistStore(client)
    return store


# ---- stage 1: decode, validate, recognise ---------------------------------------------


def _raw(item: KafkaSourceMessage | KafkaError) -> RawFrame:
    msg = item.msg if isinstance(item, KafkaError) else item
    return RawFrame(
        topic=msg.topic or "",
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value,
        headers=tuple(msg.headers or ()),
    )


def _crop_jpeg(image: np.ndarray, box: tuple[int, int, int, int]) -> bytes:
    x, y, w, h = box
    crop = image[max(0, y) : y + h, max(0, x) : x + w]
    if crop.size == 0:
        return b""
    scale = CROP_HEIGHT_PX / crop.shape[0]
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), CROP_HEIGHT_PX))
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else b""


def _unchanged_frames(settings: Settings) -> UnchangedFrames:
    worker = _worker()
    if worker.unchanged is None:
        worker.unchanged = UnchangedFrames(settings.unchanged_frame_threshold)
    return worker.unchanged


def recognise(settings: Settings, frame: DecodedFrame) -> list[Observation]:
    """Plate reads of one frame, looking only at the camera's lane region, only when it
    changed since the camera's last recognised frame, and there only where it moved
    (flows.frame_filter)."""
    view = lane_view(frame.image, settings.lane_regions.get(frame.meta.camera_id))
    regions = None
    if settings.unchanged_frame_threshold > 0:
        change = _unchanged_frames(settings).compare(frame.meta.camera_id, view)
        if change.unchanged:
            metrics.FRAMES_SKIPPED.labels("unchanged").inc()
            return []
        if settings.motion_regions:
            regions = change.regions
    area = view.shape[0] * view.shape[1]
    looked = area if regions is None else sum(w * h for _, _, w, h in regions)
    metrics.DETECTED_SHARE.observe(looked / max(1, area))
    started = time.perf_counter()
    candidates = read_frame(_recognizer(settings), view, settings, regions)
    metrics.RECOGNITION_SECONDS.observe(time.perf_counter() - started)
    metrics.PLATE_CANDIDATES.inc(len(candidates))
    return [
        Observation(
            meta=frame.meta,
            text=c.text,
            confidence=c.confidence,
            char_confidences=tuple(c.char_confidences),
            crop_jpeg=_crop_jpeg(view, c.box),
            box=c.box,
            state=c.state,
            state_confidence=c.state_confidence,
        )
        for c in candidates
    ]


def process_message(
    settings: Settings, item: KafkaSourceMessage | KafkaError
) -> tuple[FrameMeta, list[Observation]] | DeadLetter:
    """One frames-topic message -> its plate reads, or a dead letter saying why not."""
    raw = _raw(item)
    if isinstance(item, KafkaError):
        return _reject(raw, "consume_error", str(item.err))
    metrics.FRAMES_IN.labels((raw.key or b"?").decode("utf-8", "replace")).inc()
    try:
        frame = decode_frame(raw, settings.max_frame_bytes)
    except FrameRejected as exc:
        metrics.FRAME_DECODE_FAILURES.labels(exc.reason).inc()
        return _reject(raw, exc.reason, exc.detail)
    if isinstance(item, FrameMessage) and item.replayed:
        # Read before a restart: its age is the restart's, not a queue's.
        metrics.FRAMES_REPLAYED.inc()
        frame = replace(frame, meta=frame.meta.model_copy(update={"replayed": True}))
    else:
        metrics.FRAME_AGE_SECONDS.observe(
            max(0.0, time.time() - frame.meta.captured_at / 1000))
    try:
        return frame.meta, recognise(settings, frame)
    except Exception as exc:  # a model failure on one frame must not stop the flow
        log.exception("recognition failed on frame %s", frame.meta.frame_id)
        return _reject(raw, "recognition_error", f"{type(exc).__name__}: {exc}")


def _reject(raw: RawFrame, reason: str, detail: str) -> DeadLetter:
    metrics.DEAD_LETTERS.labels(reason).inc()
    return dead_letter(raw, reason, detail)


# ---- stage 2: vehicle passes (stateful, keyed by camera) ------------------------------


class PassLogic(op.StatefulLogic):
    """bytewax wrapper around one camera's PassTracker, adding a wall-clock idle close.

    Passes close on capture time (the camera's later frames) in PassTracker. A camera that
    goes quiet sends no later frame, so a wall-clock timer closes its passes too, but only
    while the flow is live: if the last frame arrived long after it was captured, the
    flow is replaying or catching up on a backlog, its later frames may still be queued,
    and closing on wall time would split passes differently on every run. Then only
    capture time closes passes (and, to bound state, a much longer stale timeout).
    """

    def __init__(self, policy: PassPolicy, state: PassTracker | None) -> None:
        self.tracker = state or PassTracker(policy)
        self.policy = policy
        self.last_activity = datetime.now(UTC)

    def on_item(self, value: tuple[FrameMeta, list[Observation]]) -> tuple[list, bool]:
        meta, observations = value
        self.last_activity = datetime.now(UTC)
        reads = self.tracker.observe_frame(meta, observations)
        return self._emit(reads, "early_or_quiet"), self.RETAIN

    def on_notify(self) -> tuple[list, bool]:
        # Nothing from this camera for the whole timeout: every open pass is over.
        return self._emit(self.tracker.close_all(), "idle"), self.RETAIN

    def on_eof(self) -> tuple[list, bool]:
        return self._emit(self.tracker.close_all(), "end_of_input"), self.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.tracker.open:
            return None
        lag_ms = self.last_activity.timestamp() * 1000 - self.tracker.clock_ms
        live = lag_ms <= self.policy.live_lag_ms
        idle_ms = self.policy.gap_ms if live else self.policy.stale_idle_ms
        return self.last_activity + timedelta(milliseconds=idle_ms)

    def snapshot(self) -> PassTracker:
        import copy

        return copy.deepcopy(self.tracker)

    @staticmethod
    def _emit(reads: list[PlateRead], cause: str) -> list[PlateRead]:
        for read in reads:
            metrics.READS.labels(read.camera_id).inc()
            metrics.PASSES_CLOSED.labels(cause).inc()
        return reads


# ---- stage 3: hotlist join and outputs ------------------------------------------------

# One per process (and Redis): its workers share what they learn of Redis (down, lists
# vanished).
_joins: dict[str, HotlistJoin] = {}
_joins_lock = threading.Lock()


def _hotlist_join(settings: Settings) -> HotlistJoin:
    with _joins_lock:
        join = _joins.get(settings.redis_url)
        if join is None:
            join = HotlistJoin(lambda: _store(settings), Backoff(settings.hotlist_retry_max_s),
                               SourceWatch(settings.required_sources()))
            _joins[settings.redis_url] = join
        return join


def join_batch(settings: Settings, reads: list[PlateRead]) -> list[OutRecord | Parked]:
    """One batch of reads: the reads (always, whatever Redis does), their alerts, and the
    alertable reads whose join must wait (parked: Redis down, or a list vanished)."""
    outcome = _hotlist_join(settings).join(reads)
    out: list[OutRecord | Parked] = [_record(settings.topics.reads, r.camera_id, r)
                                     for r in reads]
    out.extend(_alert_records(settings, outcome.alerts))
    out.extend(outcome.parked)
    return out


def _alert_records(settings: Settings, alerts: list[Alert]) -> list[OutRecord]:
    out = []
    for alert in alerts:
        metrics.ALERTS.labels(alert.entry.source.value).inc()
        if not alert.replayed:  # a replay's latency is the restart's, not the system's
            metrics.CAPTURE_TO_ALERT_SECONDS.observe(alert.latency_ms / 1000)
        out.append(_record(settings.topics.alerts, alert.read.camera_id, alert))
    return out


class ParkedJoins(op.StatefulLogic):
    """The joins owed (flows.hotlist_join): kept in this step's state, so a restart keeps
    them; retried while any wait; bounded, the oldest dropped past the limit (counted and
    logged: a dropped read may have been a hit)."""

    RETRY_S = 1.0

    def __init__(self, settings: Settings, state: list[Parked] | None) -> None:
        self.settings = settings
        self.parked: list[Parked] = list(state or [])
        metrics.HOTLIST_PARKED.set(len(self.parked))

    def on_item(self, value: Parked) -> tuple[list, bool]:
        self.parked.append(value)
        excess = len(self.parked) - self.settings.hotlist_parked_max
        if excess > 0:
            dropped, self.parked = self.parked[:excess], self.parked[excess:]
            metrics.HOTLIST_PARKED_DROPPED.inc(excess)
            log.error("hotlist joins: %d parked read(s) dropped unjoined (limit %d, "
                      "ALPR_HOTLIST_PARKED_MAX), oldest %s of camera %s", excess,
                      self.settings.hotlist_parked_max, dropped[0].read.read_id,
                      dropped[0].read.camera_id)
        metrics.HOTLIST_PARKED.set(len(self.parked))
        return [], self.RETAIN

    def on_notify(self) -> tuple[list, bool]:
        alerts, self.parked = _hotlist_join(self.settings).rejoin(self.parked)
        metrics.HOTLIST_PARKED.set(len(self.parked))
        return _alert_records(self.settings, alerts), self.RETAIN

    def on_eof(self) -> tuple[list, bool]:
        # End of a bounded input (ALPR_TAIL=false): wait a while for Redis, then say what
        # could not be joined rather than drop it silently.
        out: list[OutRecord] = []
        deadline = time.monotonic() + 60
        while self.parked and time.monotonic() < deadline:
            records, _ = self.on_notify()
            out.extend(records)
            if self.parked:
                time.sleep(0.5)
        if self.parked:
            log.error("hotlist joins: %d parked read(s) still unjoined at the end of the "
                      "input", len(self.parked))
        return out, self.RETAIN

    def notify_at(self) -> datetime | None:
        if not self.parked:
            return None
        wait = max(self.RETRY_S, _hotlist_join(self.settings).backoff.seconds_left())
        return datetime.now(UTC) + timedelta(seconds=wait)

    def snapshot(self) -> list[Parked]:
        return list(self.parked)


def _record(topic: str, key: str, record: PlateRead | Alert | DeadLetter) -> OutRecord:
    return OutRecord(topic=topic, key=key.encode(), value=record.to_json_bytes())


def build_flow(settings: Settings | None = None) -> Dataflow:
    s = settings or get_settings()
    metrics.serve_metrics(s.metrics_port)
    preload_recognizer(s)
    policy = PassPolicy(
        gap_ms=int(s.pass_gap_s * 1000),
        max_frames=s.max_frames_per_pass,
        max_open=s.max_open_passes,
        settle_confidence=s.alert_min_confidence,
        alert_min_confidence=s.alert_min_confidence,
        state_min_confidence=s.state_min_confidence,
    )
    flow = Dataflow("alpr")
    source = FramesSource(
        [s.kafka_bootstrap],
        s.topics.frames,
        tail=s.tail,
        lookback_s=s.start_lookback_s,
        progress_dir=progress_folder(s.recovery_dir, s.topics.frames),
        # Frames are large and each costs ~0.1-0.3 s of CPU: small batches keep latency
        # low and memory bounded.
        batch_size=4,
        add_config={"fetch.message.max.bytes": str(max(s.max_frame_bytes * 2, 1 << 20))},
    )
    messages = op.input("frames_in", flow, source)
    processed = op.map("recognise", messages, lambda m: process_message(s, m))
    split = op.branch("valid", processed, lambda x: not isinstance(x, DeadLetter))
    by_camera = op.key_on("by_camera", split.trues, lambda v: v[0].camera_id)
    passes = op.stateful(
        "vehicle_passes", by_camera, lambda state: PassLogic(policy, state)
    )
    reads = op.key_rm("reads", passes)
    joined = op.flat_map_batch("hotlist_join", reads, lambda batch: join_batch(s, batch))
    owed = op.branch("owed", joined, lambda x: isinstance(x, Parked))
    # One key: the joins owed are few (only during outages) and retried together.
    parked = op.key_on("park", owed.trues, lambda _: "parked")
    rejoined = op.key_rm("rejoined", op.stateful(
        "parked_joins", parked, lambda state: ParkedJoins(s, state)))
    dead = op.map(
        "dead_letters", split.falses, lambda d: _record(s.topics.dead_letters, d.key or "", d)
    )
    out = op.merge("outputs", owed.falses, rejoined, dead)
    op.output("kafka_out", out, ReliableKafkaSink(s.kafka_bootstrap))
    return flow
