"""Skipping work that cannot find a new plate: the lane region and unchanged frames.

Frames come from the synthetic camera (a car approaching over a pass) and go through the
flow's own recognise() step with the real recogniser."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from alpr import metrics
from alpr.config import Settings
from alpr.contracts import FrameMeta
from connectors.synthetic_camera import generate_passes
from flows.frame_filter import UnchangedFrames, lane_view
from flows.frames import DecodedFrame
from flows.pipeline import _resources, recognise


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
