"""A dim or washed-out frame's grey levels stretched before it is read.

On a plate seen through fog or dusk, under an IR camera's green cast or behind dirt, the
strokes differ from the plate by a few grey levels, and the text detector finds nothing
there. Stretching the frame's levels (its 1st to 99th percentile onto 0-255) gives the
detector the contrast it was trained on. A frame that already spans most levels is left
as it is, so daylight frames read exactly as before. Measured on the Brazilian crops'
train split (benchmarks/RESULTS.md): of 1,026 crops spanning under 160 levels, 912 were
read right before and 967 after; crops without a read 65 -> 7.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

# Percent of pixels clipped at each end: specular glints and deep shadow set no limit.
_CLIP_PERCENT = 1.0
# A frame narrower than this holds no text to bring out (a blank wall, a warm-up frame).
_FLAT = 16
# The levels are counted on a copy this wide at most: a 720p frame's percentiles to
# within a level, for well under a millisecond.
_SAMPLE_WIDTH = 320


def level_range(image: NDArray[np.uint8]) -> tuple[int, int]:
    """The grey levels at the 1st and 99th percentile of a BGR or grey image."""
    h, w = image.shape[:2]
    if w > _SAMPLE_WIDTH:
        image = cv2.resize(image, (_SAMPLE_WIDTH, max(1, round(h * _SAMPLE_WIDTH / w))),
                           interpolation=cv2.INTER_AREA)
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    counts = np.bincount(grey.ravel(), minlength=256).cumsum()
    clip = counts[-1] * _CLIP_PERCENT / 100
    return int(np.searchsorted(counts, clip)), int(np.searchsorted(counts, counts[-1] - clip))


def stretch_contrast(image: NDArray[np.uint8], narrower_than: int) -> NDArray[np.uint8]:
    """`image` with its levels stretched to 0-255 if they span fewer than `narrower_than`
    (and at least _FLAT); otherwise `image` itself. 0 turns the stretch off."""
    if narrower_than <= 0:
        return image
    low, high = level_range(image)
    if not _FLAT <= high - low < narrower_than:
        return image
    lut = np.clip((np.arange(256, dtype=np.float32) - low) * 255 / (high - low), 0, 255)
    return cv2.LUT(image, lut.astype(np.uint8))
