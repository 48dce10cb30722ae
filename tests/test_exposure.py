"""Dim frames read with their levels stretched (recognizers/exposure.py).

Fed: a rendered plate in a frame squeezed into a few grey levels, blurred and noisy (a
plate at dusk or in fog), a daylight frame, a blank frame. Must hold: the dim plates are
read exactly with the stretch and not all without it; frames that span most levels, and
blank ones, reach the recogniser untouched; an end the stretch faded is taken back from
the frame as it came, and nothing else is."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from kernel.settings import Settings
from recognizers import load_recognizer
from recognizers.base import PlateCandidate
from recognizers.exposure import level_range, stretch_contrast
from recognizers.frame_reader import read_frame
from sim.plate_render import render_plate


def _dim_frame(seed: int, span: int) -> np.ndarray:
    plate = np.asarray(render_plate("KJX4821", np.random.default_rng(seed), width=200))
    frame = np.full((360, 640, 3), 90, np.uint8)
    h, w = plate.shape[:2]
    frame[150:150 + h, 200:200 + w] = plate[..., :3]
    dim = 90 + frame.astype(np.float32) * span / 255
    dim = cv2.GaussianBlur(dim, (0, 0), 2.5)
    dim += np.random.default_rng(seed).normal(0, 1.5, dim.shape)
    return np.clip(dim, 0, 255).astype(np.uint8)


def test_dim_plates_are_read_once_their_levels_are_stretched() -> None:
    recognizer = load_recognizer(Settings(), None)
    frames = [_dim_frame(seed, span) for seed, span in ((0, 35), (1, 25), (2, 25))]
    for frame in frames:
        low, high = level_range(frame)
        assert high - low < 60  # as dim as the Brazilian crops it was measured on

    def exact(settings: Settings) -> int:
        return sum(bool(c) and c[0].text == "KJX4821"
                   for c in (read_frame(recognizer, f, settings) for f in frames))

    assert exact(Settings(stretch_contrast_below=0)) < len(frames)
    assert exact(Settings()) == len(frames)


def test_a_dim_frame_is_stretched_to_the_full_range() -> None:
    stretched = stretch_contrast(_dim_frame(0, 35), 160)
    low, high = level_range(stretched)
    assert low <= 10 and high >= 240  # levels counted on a smoothed, smaller copy


@pytest.mark.parametrize("frame", [
    np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (360, 1))[..., None].repeat(3, 2),
    np.full((360, 640, 3), 127, np.uint8),  # the flow's warm-up frame
])
def test_wide_and_blank_frames_reach_the_recogniser_untouched(frame: np.ndarray) -> None:
    assert stretch_contrast(frame, 160) is frame
    dim = _dim_frame(0, 35)
    assert stretch_contrast(dim, 0) is dim  # 0 turns it off


# ----------------------------------------------- a dim frame read again as it came


class _StretchFadesAnEnd:
    """A recogniser stand-in: from the stretched frame it reads "NC8808" on `box`; from
    the frame as it came (the very array read_frame was given), the reads it is built
    with."""

    def __init__(self, frame: np.ndarray, unstretched: list[PlateCandidate],
                 box: tuple[int, int, int, int] = (4, 150, 180, 50)) -> None:
        self.frame, self.unstretched, self.box, self.calls = frame, unstretched, box, 0

    def read(self, image: np.ndarray, regions: object = None) -> list[PlateCandidate]:
        self.calls += 1
        if image is self.frame:
            return list(self.unstretched)
        return [_read("NC8808", (1.0,) * 6, self.box)]


def _read(text: str, probs: tuple[float, ...], box: tuple[int, int, int, int]) -> PlateCandidate:
    return PlateCandidate(text, math.prod(probs), probs, box, text)


PLATE_BOX = (0, 148, 200, 52)  # the whole plate, from the frame's left edge


@pytest.mark.parametrize(("unstretched", "published"), [
    # the leading I the stretch faded, read as it came at 0.51: the whole plate is published
    ([_read("INC8808", (0.51,) + (1.0,) * 6, PLATE_BOX)], "INC8808"),
    # ... read at 0.3 only: not sure enough to add
    ([_read("INC8808", (0.3,) + (1.0,) * 6, PLATE_BOX)], "NC8808"),
    # a different reading of the same plate is not an extension of it
    ([_read("NC8B08", (1.0,) * 6, PLATE_BOX)], "NC8808"),
    # an extension read on another part of the frame is another text
    ([_read("INC8808", (1.0,) * 7, (400, 20, 180, 50))], "NC8808"),
    # nothing read as it came
    ([], "NC8808"),
])
def test_a_dim_frame_keeps_the_end_its_stretch_faded(
    unstretched: list[PlateCandidate], published: str
) -> None:
    """Fed: a dim frame whose stretched read, at the frame's left edge, lost its first
    letter, and what the frame as it came reads. Must hold: only a read of the same plate
    that extends the stretched one by a surely read end character replaces it; the
    stretched read is never lost."""
    frame = _dim_frame(0, 35)
    recognizer = _StretchFadesAnEnd(frame, unstretched)
    best = read_frame(recognizer, frame, Settings())[0]
    assert best.text == published
    assert recognizer.calls == 2


def test_only_dim_frames_read_at_their_edge_are_read_twice() -> None:
    """Fed: a daylight frame; a dim frame whose read is mid-frame (a plate in a scene); a
    dim frame read at its edge with `dim_frame_read_unstretched` off. Must hold: each is
    read once (a second read costs the frame's read time again), and the stretched read
    is what is published."""
    bright = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (360, 1))[..., None].repeat(3, 2)
    daylight = _StretchFadesAnEnd(bright, [])
    read_frame(daylight, bright, Settings())
    dim = _dim_frame(0, 35)
    whole = [_read("INC8808", (1.0,) * 7, (190, 148, 200, 52))]
    mid_frame = _StretchFadesAnEnd(dim, whole, box=(200, 150, 180, 50))
    assert read_frame(mid_frame, dim, Settings())[0].text == "NC8808"
    off = _StretchFadesAnEnd(dim, [_read("INC8808", (1.0,) * 7, PLATE_BOX)])
    assert read_frame(off, dim, Settings(dim_frame_read_unstretched=False))[0].text == "NC8808"
    assert (daylight.calls, mid_frame.calls, off.calls) == (1, 1, 1)
