"""The synthetic camera: ground truth, determinism, timing, looks, and Kafka publishing."""

from __future__ import annotations

import itertools
import re
import time
import uuid

import cv2
import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from sim.plate_render import (
    PLATE_FORMATS,
    PLATE_STYLES,
    TTF_FONTS,
    plate_truth,
    random_plate,
    render_plate,
)
from sim.scene import Conditions, encode_jpeg, render_frame
from sim.synthetic_camera import (
    SyntheticFrame,
    camera_partitions,
    generate_passes,
    iter_frames,
    publish_frames,
    scene_seed,
)

TRUTH = re.compile(r"^[A-Z0-9]+$")


def _decode(jpeg: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flags)
    assert img is not None, "not a decodable JPEG"
    return img


@pytest.fixture(scope="module")
def passes():
    """Two cameras, three passes each, typical conditions: shared by several tests."""
    return generate_passes(
        6,
        4,
        seed=11,
        cameras=("cam-1", "cam-2"),
        start_ms=1_800_000_000_000,
        conditions="typical",
    )


# --------------------------------------------------------------------- plates & frames


def test_random_plate_honours_formats() -> None:
    rng = np.random.default_rng(0)
    for name, pattern in PLATE_FORMATS.items():
        for fmt in (name, pattern):
            for _ in range(50):
                plate = random_plate(rng, fmt)
                assert len(plate) == len(pattern)
                for c, kind in zip(plate, pattern, strict=True):
                    assert c.isdigit() if kind == "D" else c.isalpha() and c.isupper()
    with pytest.raises(ValueError):
        random_plate(rng, "LLX")


def test_random_plate_mix_is_realistic() -> None:
    rng = np.random.default_rng(1)
    plates = [random_plate(rng) for _ in range(3000)]
    assert all(TRUTH.match(p) for p in plates)
    patterns = {"".join("D" if c.isdigit() else "L" for c in p) for p in plates}
    assert patterns == set(PLATE_FORMATS.values())
    letters = "".join(c for p in plates for c in p if c.isalpha())
    # Standard-issue serials: no I, O or Q (they would print as 1 and 0); all else used.
    assert not set(letters) & set("IOQ")
    assert set(letters) == set("ABCDEFGHJKLMNPRSTUVWXYZ")


def test_render_plate_shape_styles_and_separators() -> None:
    rng = np.random.default_rng(2)
    for style in range(len(PLATE_STYLES)):
        plate = render_plate("ABC1234", rng, style=style, font=cv2.FONT_HERSHEY_DUPLEX)
        assert plate.shape == (120, 240, 3) and plate.dtype == np.uint8
        assert plate.std() > 20  # not blank: text, border, state name
    assert render_plate("123-ABC", rng, state="TEXAS", width=300).shape == (150, 300, 3)
    assert plate_truth("123-ABC") == plate_truth("123 abc") == "123ABC"
    with pytest.raises(ValueError):
        render_plate("AB_12", rng)


def test_render_frame_size_and_overlay() -> None:
    rng = np.random.default_rng(3)
    img = render_frame([("ABC1234", 0.5, 0.55, 1.0)], rng, Conditions.clean())
    assert img.shape == (720, 1280, 3) and img.dtype == np.uint8
    # The timestamp overlay is white text in the top-left corner.
    assert (img[10:40, 16:300] > 240).all(axis=2).sum() > 200
    small = render_frame([], rng, Conditions.clean(), width=640, height=360)
    assert small.shape == (360, 640, 3)
    assert _decode(encode_jpeg(img)).shape == (720, 1280, 3)


def test_conditions_presets() -> None:
    rng = np.random.default_rng(4)
    assert Conditions.clean() == Conditions.preset("clean", rng)
    hard = [Conditions.hard(rng) for _ in range(20)]
    assert any(c.night for c in hard) and not all(c.night for c in hard)
    assert min(c.blur for c in hard) > max(Conditions.typical(rng).blur for _ in range(20))
    with pytest.raises(ValueError):
        Conditions(jpeg_quality=0)
    with pytest.raises(ValueError):
        Conditions.preset("foggy", rng)
    with pytest.raises(ValueError):
        Conditions(plate_scale=0)
    # Severe: far plates (a fraction of the usual size), never sharp.
    severe = [Conditions.preset("severe", rng) for _ in range(20)]
    assert max(c.plate_scale for c in severe) < 0.6 <= min(c.plate_scale for c in hard)
    assert min(c.blur for c in severe) > 1.0


@pytest.mark.parametrize("font", TTF_FONTS)
def test_every_shipped_font_draws_every_plate_character(font: str) -> None:
    """Each character is drawn (ink on the plate) and no two characters look the same,
    but for the round ones real plate fonts also share (O, Q, 0, D): a font file missing
    from the package, or a glyph missing from it, fails here."""
    looks = {}
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        img = render_plate(c * 3, np.random.default_rng(0), style=0, font=font)
        ink = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[30:100, 10:230] < 128  # character band
        assert ink.mean() > 0.02, f"{font}: {c!r} drew nothing"
        looks[c] = ink
    for a, b in itertools.combinations(looks, 2):
        if {a, b} <= set("OQ0D"):
            continue
        overlap = (looks[a] & looks[b]).sum() / (looks[a] | looks[b]).sum()
        assert overlap < 0.9, f"{font}: {a!r} and {b!r} look alike"


def test_far_plates_are_drawn_smaller() -> None:
    """plate_scale shrinks the plate in the frame (dark pixels of a white plate's text)."""
    rng = np.random.default_rng(1)
    near = render_frame([("ABC1234", 0.5, 0.5, 1.0)], rng, Conditions.clean(), scene_seed=1)
    far = render_frame([("ABC1234", 0.5, 0.5, 1.0)], np.random.default_rng(1),
                       Conditions(plate_scale=0.4), scene_seed=1)  # fmt: skip
    background = render_frame([], np.random.default_rng(1), Conditions.clean(), scene_seed=1)
    changed_near = (np.abs(near.astype(int) - background).sum(axis=2) > 40).sum()
    changed_far = (np.abs(far.astype(int) - background).sum(axis=2) > 40).sum()
    assert changed_far < 0.4 * changed_near


# --------------------------------------------------------------------- passes


def test_passes_are_deterministic() -> None:
    a = generate_passes(2, 3, seed=5, conditions="hard")
    b = generate_passes(2, 3, seed=5, conditions="hard")
    c = generate_passes(2, 3, seed=6, conditions="hard")
    assert [f.jpeg for p in a for f in p.frames] == [f.jpeg for p in b for f in p.frames]
    assert a == b
    assert all(
        fa.jpeg != fc.jpeg
        for pa, pc in zip(a, c, strict=True)
        for fa, fc in zip(pa.frames, pc.frames, strict=True)
    )
    # Pass k does not depend on how many passes were asked for.
    assert generate_passes(1, 3, seed=5, conditions="hard")[0] == a[0]


def test_frames_decode_with_truth(passes) -> None:
    plates = [p.plate for p in passes]
    assert len(set(plates)) == len(plates)
    for p in passes:
        assert TRUTH.match(p.plate)
        for i, f in enumerate(p.frames):
            assert f.truth_plate == p.plate and f.pass_index == p.pass_index
            assert f.camera_id == p.camera_id
            assert f.frame_id == f"{p.camera_id}-{p.pass_index:05d}-{i:02d}"
            assert 20_000 < len(f.jpeg) < 400_000
            assert _decode(f.jpeg).shape == (720, 1280, 3)


def test_pass_timing(passes) -> None:
    assert [p.camera_id for p in passes] == ["cam-1", "cam-2"] * 3  # round-robin
    assert passes[0].first_captured_at == 1_800_000_000_000
    for p in passes:
        times = [f.captured_at for f in p.frames]
        assert times[0] == p.first_captured_at
        assert np.diff(times).tolist() == [200] * (len(times) - 1)
    for cam in ("cam-1", "cam-2"):
        own = [p for p in passes if p.camera_id == cam]
        for prev, nxt in itertools.pairwise(own):
            gap = nxt.first_captured_at - prev.frames[-1].captured_at
            assert gap == 4000 and gap > 2000  # a 2 s dedupe gap sees separate passes
    ordered = list(iter_frames(passes))
    assert len(ordered) == sum(len(p.frames) for p in passes)
    assert [f.captured_at for f in ordered] == sorted(f.captured_at for f in ordered)


def test_given_plates_and_the_vehicle_approaches() -> None:
    (p,) = generate_passes(1, 5, seed=0, plates=["HOT123"])
    assert p.plate == "HOT123" and all(f.truth_plate == "HOT123" for f in p.frames)
    with pytest.raises(ValueError):
        generate_passes(1, plates=["hot-123"])

    # What differs from the empty road is the vehicle: it grows and moves down/left.
    empty = render_frame(
        [], np.random.default_rng(0), Conditions.clean(), scene_seed=scene_seed("cam-1", 0)
    )

    def vehicle_box(jpeg: bytes) -> tuple[int, int, int]:
        diff = cv2.absdiff(_decode(jpeg), empty).max(axis=2)
        diff[:60, :420] = 0  # the timestamp overlay differs too
        # The largest changed blob; JPEG chroma ringing on thin lane lines is left out.
        changed = cv2.morphologyEx(
            (diff > 40).astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)
        )
        _, labels, stats, _ = cv2.connectedComponentsWithStats(changed)
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])))
        return int(xs.max() - xs.min()), int(np.median(xs)), int(ys.max())

    boxes = [vehicle_box(f.jpeg) for f in p.frames]
    widths = [b[0] for b in boxes]
    assert widths == sorted(widths) and widths[-1] > widths[0] * 1.4  # scale 0.8 -> 1.4
    assert boxes[-1][1] < boxes[0][1] and boxes[-1][2] > boxes[0][2]


def test_hard_conditions_are_blurrier_than_clean() -> None:
    def sharpness(frame: SyntheticFrame) -> float:
        return float(cv2.Laplacian(_decode(frame.jpeg, cv2.IMREAD_GRAYSCALE), cv2.CV_64F).var())

    # Same seed: same plates and paths, only the conditions differ.
    clean = [sharpness(f) for p in generate_passes(3, 2, seed=3) for f in p.frames]
    hard = [
        sharpness(f) for p in generate_passes(3, 2, seed=3, conditions="hard") for f in p.frames
    ]
    assert np.mean(hard) < 0.7 * np.mean(clean)


# --------------------------------------------------------------------- publishing


class _RecordingProducer:
    """Stands in for confluent_kafka.Producer where only the calls matter."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.polls = 0

    def produce(self, topic: str, **kw) -> None:
        self.sent.append({"topic": topic, **kw})
        kw["on_delivery"](None, None)

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


def _frame(camera: str, at: int, i: int) -> SyntheticFrame:
    return SyntheticFrame(camera, f"{camera}-{i}", at, b"\xff\xd8jpeg", "ABC123", 0)


def test_publish_rewrite_time_keeps_spacing_and_never_stamps_the_future() -> None:
    frames = [_frame("cam-1", 1000, 0), _frame("cam-1", 1200, 1), _frame("cam-1", 6000, 2)]
    clock = [50_000]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += round(s * 1000)

    producer = _RecordingProducer()
    n = publish_frames(
        producer, "t", frames, now_ms=lambda: clock[0], rewrite_time=True, sleep=sleep
    )
    assert n == 3 and producer.polls >= 3
    stamps = [int(dict(m["headers"])["captured_at"]) for m in producer.sent]
    assert stamps == [50_000, 50_200, 55_000]  # relative spacing kept, pass gap too
    assert slept == [0.2, 4.8]
    assert [m["timestamp"] for m in producer.sent] == stamps


def test_publish_paces_to_rate() -> None:
    frames = [_frame("cam-1", 1000 + 10 * i, i) for i in range(5)]
    clock = [0]

    def sleep(s: float) -> None:
        clock[0] += round(s * 1000)

    producer = _RecordingProducer()
    publish_frames(producer, "t", frames, rate_fps=10, now_ms=lambda: clock[0], sleep=sleep)
    assert clock[0] == 400  # 5 frames at 10 fps: the last one leaves at 400 ms
    # Without rewrite_time the original capture times are sent.
    assert [int(dict(m["headers"])["captured_at"]) for m in producer.sent] == [
        1000,
        1010,
        1020,
        1030,
        1040,
    ]


def test_publish_frames_to_a_broker(kafka: str, passes) -> None:
    topic = f"frames-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(10)
    frames = list(iter_frames(passes[:2]))
    producer = Producer({"bootstrap.servers": kafka})
    assert publish_frames(producer, topic, frames) == len(frames)

    # assign(), not subscribe(): a first group join on tansu takes seconds. librdkafka
    # still wants a group id.
    consumer = Consumer(
        {
            "bootstrap.servers": kafka,
            "group.id": f"test-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 15
        while len(got) < len(frames) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append(msg)
    finally:
        consumer.close()

    assert len(got) == len(frames)
    for msg, frame in zip(got, frames, strict=True):  # one partition: order is kept
        assert msg.key() == frame.camera_id.encode()
        assert msg.value() == frame.jpeg
        headers = {k: v for k, v in msg.headers()}
        assert headers == {
            "camera_id": frame.camera_id.encode(),
            "captured_at": str(frame.captured_at).encode(),
            "frame_id": frame.frame_id.encode(),
            "schema_version": b"1",
        }


def test_each_camera_can_have_its_own_partition(kafka: str, passes) -> None:
    """Fed: frames of two cameras with camera_partitions over 2 partitions. Must come out:
    each camera's frames all in its own partition (so two workers share the load)."""
    topic = f"frames-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(10)
    frames = list(iter_frames(passes[:4]))
    cameras = sorted({f.camera_id for f in frames})
    assert len(cameras) == 2
    mapping = camera_partitions(cameras, 2)
    assert sorted(mapping.values()) == [0, 1]
    producer = Producer({"bootstrap.servers": kafka})
    assert publish_frames(producer, topic, frames, partitions=mapping) == len(frames)
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"test-{topic}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
        got = []
        deadline = time.monotonic() + 15
        while len(got) < len(frames) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
    finally:
        consumer.close()
    assert len(got) == len(frames)
    for msg in got:
        assert msg.partition() == mapping[msg.key().decode()]
