"""Dim frames read with their levels stretched (recognizers/exposure.py).

Fed: a rendered plate in a frame squeezed into a few grey levels, blurred and noisy (a
plate at dusk or in fog), a daylight frame, a blank frame. Must hold: the dim plates are
read exactly with the stretch and not all without it; frames that span most levels, and
blank ones, reach the recogniser untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernel.settings import Settings
from recognizers import load_recognizer
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
