"""Skipping work that cannot find a new plate: the lane region, unchanged frames, and
the parts of a changed frame where nothing moved.

Frames come from the synthetic camera (a car approaching over a pass) and go through the
flow's own recognise() step with the real recogniser."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from flows import metrics
from flows.frame_filter import (
    MAX_MOTION_SHARE,
    MOTION_CELL_THRESHOLD,
    MOTION_MARGIN_CELLS,
    THUMB_SIZE,
    UnchangedFrames,
    lane_view,
    moving_regions,
)
from flows.frames import DecodedFrame
from flows.pipeline import _resources, recognise
from kernel.contracts import FrameMeta
from kernel.settings import Settings
from sim.synthetic_camera import generate_passes


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    (p,) = generate_passes(1, 4, seed=5, conditions="clean", cameras=("cam-1",))
    return [cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR) for f in p.frames]


def decoded(image: np.ndarray, i: int, camera: str = "cam-1") -> DecodedFrame:
    meta = FrameMeta(camera_id=camera, captured_at=1000 + i, frame_id=f"{camera}-{i}")
    return DecodedFrame(meta=meta, image=image, jpeg_bytes=0)


def test_lane_view_is_the_region_in_fractions() -> None:
    image = np.zeros((720, 1280, 3), np.uint8)
    assert lane_view(image, None) is image
    assert lane_view(image, (0.0, 0.5, 1.0, 0.5)).shape == (360, 1280, 3)
    assert lane_view(image, (0.25, 0.0, 0.5, 0.25)).shape == (180, 640, 3)


def test_lane_regions_must_be_fractions_of_the_frame() -> None:
    assert Settings(lane_regions={"cam-1": (0, 0.4, 1, 0.6)}).lane_regions["cam-1"][1] == 0.4
    for bad in ((0, 0.5, 1, 0.6), (-0.1, 0, 1, 1), (0, 0, 0, 1), (0, 0, 2, 1)):
        with pytest.raises(ValidationError, match="lane region of cam-1"):
            Settings(lane_regions={"cam-1": bad})


def test_same_picture_is_unchanged_a_moving_car_is_not(frames: list[np.ndarray]) -> None:
    seen = UnchangedFrames(threshold=1.5)
    assert not seen.is_unchanged("cam-1", frames[0])  # nothing to compare with yet
    # The same picture through another JPEG encoding: only compression noise differs.
    _, buf = cv2.imencode(".jpg", frames[0], [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert seen.is_unchanged("cam-1", cv2.imdecode(buf, cv2.IMREAD_COLOR))
    assert not seen.is_unchanged("cam-1", frames[1])  # the car moved
    assert not seen.is_unchanged("cam-2", frames[1])  # cameras are independent
    assert not UnchangedFrames(threshold=0).is_unchanged("cam-1", frames[0])


def test_flow_skips_unchanged_frames_and_reads_changed_ones(frames: list[np.ndarray]) -> None:
    """Fed: frame 0, frame 0 again, frame 1 of an approaching car. Must come out: reads
    for frames 0 and 1, nothing (a counted skip) for the repeat."""
    _resources.unchanged = None
    settings = Settings(unchanged_frame_threshold=1.5)
    skipped = metrics.FRAMES_SKIPPED.labels("unchanged")
    before = skipped._value.get()
    first = recognise(settings, decoded(frames[0], 0, "cam-skip"))
    again = recognise(settings, decoded(frames[0].copy(), 1, "cam-skip"))
    moved = recognise(settings, decoded(frames[1], 2, "cam-skip"))
    assert first and moved
    assert again == []
    assert skipped._value.get() == before + 1


def test_flow_reads_only_inside_the_lane_region(frames: list[np.ndarray]) -> None:
    """Fed: the same frame with a lane region over the plate's half and over the other
    half. Must come out: a read for the first, none for the second."""
    _resources.unchanged = None
    image = frames[-1]
    whole = recognise(Settings(unchanged_frame_threshold=0), decoded(image, 0, "cam-whole"))
    assert whole
    settings = Settings(unchanged_frame_threshold=0,
                        lane_regions={"cam-low": (0, 0.5, 1, 0.5), "cam-high": (0, 0, 1, 0.5)})
    # The plate is on the bumper, in the lower half of the synthetic frames.
    low = recognise(settings, decoded(image, 1, "cam-low"))
    high = recognise(settings, decoded(image, 2, "cam-high"))
    assert [o.text for o in low] == [whole[0].text]
    assert high == []


def _diff(cells: list[tuple[int, int]], level: float = 40.0) -> np.ndarray:
    """A thumbnail difference: JPEG-like noise everywhere, `level` at the given cells."""
    diff = np.random.default_rng(1).uniform(0, 2, (THUMB_SIZE[1], THUMB_SIZE[0]))
    for col, row in cells:
        diff[row, col] = level
    return diff.astype(np.float32)


def test_moving_regions_box_what_moved_with_a_margin() -> None:
    """Fed: per-cell differences of a 1280x720 frame (40x40 px cells): noise only; one
    moved cell; two far apart; two whose margins overlap; change nearly everywhere.
    Out: nothing; one box of (1 + 2 x margin) cells around the cell; two boxes; one
    merged box; the whole frame (None)."""
    shape = (720, 1280, 3)
    m = MOTION_MARGIN_CELLS
    assert moving_regions(_diff([]), shape) == ()
    side = (2 * m + 1) * 40
    assert moving_regions(_diff([(10, 8)]), shape) == (((10 - m) * 40, (8 - m) * 40, side, side),)
    # Below the cell threshold: noise, not motion.
    assert moving_regions(_diff([(10, 8)], MOTION_CELL_THRESHOLD - 0.5), shape) == ()
    # At a corner the box stops at the frame's edge.
    assert moving_regions(_diff([(0, 0)]), shape) == ((0, 0, (m + 1) * 40, (m + 1) * 40),)
    assert len(moving_regions(_diff([(3, 3), (28, 14)]), shape)) == 2
    (merged,) = moving_regions(_diff([(10, 8), (10 + 2 * m + 1, 8)]), shape)
    assert merged == ((10 - m) * 40, (8 - m) * 40, (4 * m + 2) * 40, side)
    everywhere = [(c, r) for c in range(0, 32, 2) for r in range(0, 18, 2)]
    assert moving_regions(_diff(everywhere), shape) is None
    assert MAX_MOTION_SHARE < 1


def _street(car_x: int) -> np.ndarray:
    """A fixed textured scene with a bright 'car' (a 160x120 block) at car_x."""
    scene = np.random.default_rng(7).integers(60, 120, (720, 1280, 3), dtype=np.uint8)
    scene = cv2.GaussianBlur(scene, (0, 0), 3)
    scene[400:520, car_x : car_x + 160] = 230
    return scene


def test_compare_says_where_a_frame_moved() -> None:
    """Fed: a street with a car, the same street, then the car moved 80 px right. Out:
    the first frame whole (nothing to compare with), the repeat unchanged, the third
    changed only around the car's old and new places, which the boxes cover."""
    seen = UnchangedFrames(threshold=1.5)
    first = seen.compare("cam-1", _street(400))
    assert not first.unchanged and first.regions is None
    assert seen.compare("cam-1", _street(400)).unchanged
    moved = seen.compare("cam-1", _street(480))
    assert not moved.unchanged and moved.regions
    (x, y, w, h), *rest = moved.regions
    assert not rest
    assert x <= 400 and x + w >= 480 + 160 and y <= 400 and y + h >= 520
    assert w * h < 0.25 * 1280 * 720  # the rest of the street is not looked at


@pytest.fixture(scope="module")
def far_frames() -> list[np.ndarray]:
    """A far car (the severe preset: plates 70-170 px wide) crossing a quarter of the view."""
    (p,) = generate_passes(1, 3, seed=21, conditions="severe", cameras=("cam-1",))
    return [cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR) for f in p.frames]


def test_flow_detects_only_where_the_frame_moved(far_frames: list[np.ndarray]) -> None:
    """Fed: a far car's first frame, then its next (the car moved). Out: the first seen
    whole, the next only where it moved (under half of it, counted in
    alpr_detected_frame_share), with the same read as with motion regions off and its
    box within 3 px (the detector sees less context around it)."""
    _resources.unchanged = None
    settings = Settings(unchanged_frame_threshold=1.5)
    count_before, sum_before = _histogram(metrics.DETECTED_SHARE)
    recognise(settings, decoded(far_frames[0], 0, "cam-motion"))
    moved = recognise(settings, decoded(far_frames[1], 1, "cam-motion"))
    count_after, sum_after = _histogram(metrics.DETECTED_SHARE)
    assert count_after == count_before + 2
    assert sum_after - sum_before < 1.5  # the first whole (1.0), the second < 0.5
    off = Settings(unchanged_frame_threshold=1.5, motion_regions=False)
    recognise(off, decoded(far_frames[0], 0, "cam-whole-2"))
    whole = recognise(off, decoded(far_frames[1], 1, "cam-whole-2"))
    assert moved and [o.text for o in moved] == [o.text for o in whole]
    assert max(abs(a - b) for a, b in zip(moved[0].box, whole[0].box, strict=True)) <= 3


def _histogram(h: object) -> tuple[float, float]:
    samples = {s.name: s.value for m in h.collect() for s in m.samples}  # type: ignore[attr-defined]
    return samples["alpr_detected_frame_share_count"], samples["alpr_detected_frame_share_sum"]
