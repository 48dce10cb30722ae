"""A synthetic ALPR camera: vehicle passes with ground truth, and a Kafka publisher.

`generate_passes` renders vehicles driving past one or more cameras (see plate_render for
the pictures); `publish_frames` sends frames to the frames topic exactly as a camera
gateway would: key = camera id, value = JPEG, headers = camera_id / captured_at /
frame_id / schema_version (kernel.contracts).

Everything is a function of the seed: the same arguments give byte-identical JPEGs, so
tests and benchmarks are reproducible.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from kernel.contracts import (
    HEADER_CAMERA_ID,
    HEADER_CAPTURED_AT,
    HEADER_FRAME_ID,
    HEADER_SCHEMA,
    SCHEMA_VERSION,
)
from sim.plate_render import plate_truth, random_plate
from sim.scene import DEFAULT_EPOCH_MS, Conditions, encode_jpeg, render_frame

__all__ = [
    "SyntheticFrame",
    "SyntheticPass",
    "camera_partitions",
    "frame_headers",
    "generate_passes",
    "iter_frames",
    "iter_passes",
    "publish_frames",
    "scene_seed",
]

ConditionsName = Literal["clean", "typical", "hard", "severe"]

# The vehicle's path through the frame over one pass (plate centre as fractions of the
# frame, plate scale): it approaches, so the plate grows and moves down and to the left.
_START = (0.60, 0.42, 0.8)
_END = (0.45, 0.66, 1.4)


@dataclass(frozen=True)
class SyntheticFrame:
    """One camera frame and what is really on it."""

    camera_id: str
    frame_id: str
    captured_at: int  # epoch ms
    jpeg: bytes
    truth_plate: str | None  # A-Z0-9 as printed; None if no plate is in the frame
    pass_index: int


@dataclass(frozen=True)
class SyntheticPass:
    """One vehicle driving past one camera: consecutive frames of the same plate."""

    pass_index: int
    camera_id: str
    plate: str
    first_captured_at: int
    frames: tuple[SyntheticFrame, ...]


def scene_seed(camera_id: str, seed: int) -> int:
    """The render_frame scene_seed of a camera: one road per camera and seed.

    crc32, not hash(): hash() of a str is salted per process.
    """
    return zlib.crc32(f"{seed}:{camera_id}".encode())


def _check_plate(plate: str) -> str:
    if not plate or plate != plate_truth(plate):
        raise ValueError(f"plates must be non-empty A-Z0-9 ground truth: {plate!r}")
    return plate


def iter_passes(
    n_passes: int,
    frames_per_pass: int = 5,
    *,
    seed: int = 0,
    cameras: Sequence[str] = ("cam-1",),
    start_ms: int | None = None,
    frame_interval_ms: int = 200,
    pass_gap_ms: int = 4000,
    conditions: ConditionsName = "clean",
    plates: Sequence[str] | None = None,
    state: str = "COLORADO",
) -> Iterator[SyntheticPass]:
    """Like generate_passes, but renders one pass at a time (for thousands of frames)."""
    if n_passes < 0 or frames_per_pass < 1:
        raise ValueError("n_passes must be >= 0 and frames_per_pass >= 1")
    if frame_interval_ms <= 0 or pass_gap_ms <= 0:
        raise ValueError("frame_interval_ms and pass_gap_ms must be > 0")
    if not cameras or len(set(cameras)) != len(cameras):
        raise ValueError("cameras must be a non-empty list of distinct ids")
    if plates is not None and not plates:
        raise ValueError("plates, when given, must not be empty")
    Conditions.preset(conditions, np.random.default_rng(0))  # fail early on a bad name
    start = DEFAULT_EPOCH_MS if start_ms is None else int(start_ms)

    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    if plates is not None:
        # Given plates are used in order and repeated if there are fewer than passes.
        chosen = [_check_plate(p) for p in (plates[i % len(plates)] for i in range(n_passes))]
    else:
        seen: set[str] = set()
        while len(chosen) < n_passes:
            p = random_plate(rng)
            if p not in seen:
                seen.add(p)
                chosen.append(p)

    # Each camera has its own clock; cameras are staggered by a fraction of a frame so
    # their frames interleave instead of sharing timestamps.
    clocks = {cam: start + (i * frame_interval_ms) // len(cameras) for i, cam in enumerate(cameras)}
    for index in range(n_passes):
        camera_id = cameras[index % len(cameras)]
        plate = chosen[index]
        first = clocks[camera_id]
        # Per-pass generator from (seed, index): pass k is the same whatever n_passes is.
        pass_rng = np.random.default_rng([seed, index])
        cond = Conditions.preset(conditions, pass_rng)
        lane = pass_rng.uniform(-0.04, 0.04)  # where in the lane this vehicle drives
        scene = scene_seed(camera_id, seed)
        frames = []
        for i in range(frames_per_pass):
            t = i / (frames_per_pass - 1) if frames_per_pass > 1 else 0.5
            x, y, scale = (a + (b - a) * t for a, b in zip(_START, _END, strict=True))
            captured_at = first + i * frame_interval_ms
            image = render_frame(
                [(plate, x + lane, y, scale)],
                np.random.default_rng([seed, index, i]),
                cond,
                state=state,
                scene_seed=scene,
                timestamp_ms=captured_at,
                camera_label=camera_id.upper(),
            )
            frames.append(
                SyntheticFrame(
                    camera_id=camera_id,
                    frame_id=f"{camera_id}-{index:05d}-{i:02d}",
                    captured_at=captured_at,
                    jpeg=encode_jpeg(image, cond.jpeg_quality),
                    truth_plate=plate,
                    pass_index=index,
                )
            )
        last = first + (frames_per_pass - 1) * frame_interval_ms
        clocks[camera_id] = last + pass_gap_ms
        yield SyntheticPass(index, camera_id, plate, first, tuple(frames))


def generate_passes(
    n_passes: int,
    frames_per_pass: int = 5,
    *,
    seed: int = 0,
    cameras: Sequence[str] = ("cam-1",),
    start_ms: int | None = None,
    frame_interval_ms: int = 200,
    pass_gap_ms: int = 4000,
    conditions: ConditionsName = "clean",
    plates: Sequence[str] | None = None,
    state: str = "COLORADO",
) -> list[SyntheticPass]:
    """Render `n_passes` vehicle passes, deterministically for a seed.

    Passes go to `cameras` round-robin. Within a pass the frames are `frame_interval_ms`
    apart; on one camera the next pass starts `pass_gap_ms` after the previous pass's last
    frame (the default 4 s is above the flow's 2 s pass gap, so each pass is closed
    separately). Plates are distinct random ones unless `plates` is given (used in order,
    repeated if short). `start_ms` defaults to a fixed instant (DEFAULT_EPOCH_MS), not
    now: the time is burnt into the pictures, and the bytes must not depend on it.
    `conditions` names a Conditions preset, drawn once per pass.
    Holds every JPEG in memory (~100-200 KB a frame): use iter_passes for big runs.
    """
    return list(
        iter_passes(
            n_passes,
            frames_per_pass,
            seed=seed,
            cameras=cameras,
            start_ms=start_ms,
            frame_interval_ms=frame_interval_ms,
            pass_gap_ms=pass_gap_ms,
            conditions=conditions,
            plates=plates,
            state=state,
        )
    )


def iter_frames(passes: Iterable[SyntheticPass]) -> Iterator[SyntheticFrame]:
    """All frames of the passes in capture-time order (ties: camera, then frame id)."""
    frames = [f for p in passes for f in p.frames]
    frames.sort(key=lambda f: (f.captured_at, f.camera_id, f.frame_id))
    return iter(frames)


def frame_headers(frame: SyntheticFrame, captured_at: int | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers of a frame as kernel.contracts defines them."""
    at = frame.captured_at if captured_at is None else captured_at
    return [
        (HEADER_CAMERA_ID, frame.camera_id.encode()),
        (HEADER_CAPTURED_AT, str(int(at)).encode("ascii")),
        (HEADER_FRAME_ID, frame.frame_id.encode()),
        (HEADER_SCHEMA, SCHEMA_VERSION.encode()),
    ]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def camera_partitions(cameras: Sequence[str], partitions: int) -> dict[str, int]:
    """Camera i on partition i % partitions. bytewax gives partition p to worker
    p % workers, so consecutive cameras land on different workers."""
    return {camera: i % partitions for i, camera in enumerate(cameras)}


def publish_frames(
    producer: Producer,
    topic: str,
    frames: Iterable[SyntheticFrame],
    rate_fps: float | None = None,
    now_ms: Callable[[], int] | None = None,
    *,
    rewrite_time: bool = False,
    partitions: Mapping[str, int] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    flush_timeout_s: float = 30.0,
) -> int:
    """Produce frames to `topic`; returns how many were sent.

    Key = camera id, value = JPEG, headers per kernel.contracts; the Kafka timestamp is the
    capture time. `rate_fps` paces sending to at most that many frames a second (None:
    as fast as the producer takes them).

    `rewrite_time=True` is for the live demo, where latency must be real: the frames are
    replayed in real time, keeping their relative spacing (so pass gaps survive), and
    each is stamped with the current time when its turn comes: captured_at = publish
    start + (its original captured_at - the first frame's). A frame is never sent before
    its stamp; if sending falls behind (slow broker, rate_fps), the stamp stays and the
    delay shows up as latency, as it would for a real camera.

    `partitions` ({camera id: partition}, see camera_partitions) sends each camera's frames
    to its own partition, as a camera gateway should: the default key hash can put every
    camera on partitions that one worker owns.

    Raises KafkaException if a delivery fails and RuntimeError if the flush times out:
    a camera feed that silently drops frames would make tests pass for the wrong reason.
    """
    if rate_fps is not None and rate_fps <= 0:
        raise ValueError("rate_fps must be > 0")
    clock = now_ms or _wall_ms
    min_gap_ms = 1000.0 / rate_fps if rate_fps else 0.0
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    count = 0
    t0: int | None = None  # wall clock at the first frame
    first_capture: int | None = None
    next_slot = 0.0  # earliest send time under rate_fps
    for frame in frames:
        now = clock()
        if t0 is None:
            t0, first_capture, next_slot = now, frame.captured_at, float(now)
        assert first_capture is not None
        captured_at = frame.captured_at
        due = next_slot
        if rewrite_time:
            captured_at = t0 + (frame.captured_at - first_capture)
            due = max(due, float(captured_at))
        if due > now:
            sleep((due - now) / 1000.0)
            now = max(now, clock())
        next_slot = max(float(now), due) + min_gap_ms
        headers = frame_headers(frame, captured_at)
        where = {}
        if partitions is not None and frame.camera_id in partitions:
            where["partition"] = partitions[frame.camera_id]
        while True:
            try:
                producer.produce(
                    topic,
                    value=frame.jpeg,
                    key=frame.camera_id.encode(),
                    headers=headers,
                    timestamp=captured_at,
                    on_delivery=on_delivery,
                    **where,
                )
                break
            except BufferError:
                # Local queue full: let librdkafka send some, then retry this frame.
                producer.poll(0.1)
        producer.poll(0)
        count += 1
        if errors:
            raise KafkaException(errors[0])
    remaining = producer.flush(flush_timeout_s)
    if errors:
        raise KafkaException(errors[0])
    if remaining:
        raise RuntimeError(f"{remaining} frames still unsent after {flush_timeout_s}s flush")
    return count
