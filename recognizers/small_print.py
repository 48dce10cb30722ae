"""Small print at the end of a plate number: characters printed at half height.

Some plates print small characters right after the serial, on the same line: New
Jersey's small digits ("10-DTM" then a small "59"), stacked vehicle-class letters. The
detector boxes them with the serial, and the recogniser reads them as more of it
("10DTM59"), which then matches no hotlist entry. A hotlist holds the serial only.

The recogniser's CTC output says which input columns each character came from. Within
those columns, the tallest run of ink rows in the crop (Otsu threshold, ink being the
minority class) is the character's height. A trailing run of 2-3 characters that are
all much shorter than the rest is small print and is dropped. Two rules keep this
conservative:

* the rest must be at least 4 characters of even height, since one short glyph in the
  serial means the threshold failed, not small print;
* a single short last character is kept: it is as likely a badly lit glyph.

On the 180 benchmark photos, the rule fired on two boxes: 10DTM59 (right) and a
dealer-frame word (no plate either way).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["char_heights", "small_tail"]

SMALL = 0.6  # a small character is under this x the median height of the others
EVEN = 0.75  # every other character is at least this x their median height
MIN_KEPT = 4  # characters that must remain
TAIL_LENGTHS = (3, 2)  # trailing runs that may be small print, longest tried first


def char_heights(
    image: NDArray[np.uint8], spans: Sequence[tuple[int, int]], step_px: float
) -> list[int]:
    """Height in pixels of each character of a read, from its CTC step span.

    `image` is the crop as the recogniser saw it (BGR or grey, resized, before padding).
    A span (a, b) of output steps covers columns a * step_px up to (b + 1) * step_px,
    widened by 2 px on both sides to catch thin strokes."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = binary == 0
    ink = dark if dark.mean() < 0.5 else ~dark
    width = ink.shape[1]
    heights = []
    for first, last in spans:
        x0 = max(0, int(first * step_px) - 2)
        x1 = min(width, int((last + 1) * step_px) + 2)
        rows = ink[:, x0:x1].any(axis=1)
        heights.append(_longest_run(rows))
    return heights


def _longest_run(flags: NDArray[np.bool_]) -> int:
    best = run = 0
    for flag in flags.tolist():
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def small_tail(heights: Sequence[int]) -> int:
    """How many trailing characters are small print (0 if none), given the heights of a
    read's letters and digits in order."""
    for k in TAIL_LENGTHS:
        if len(heights) - k < MIN_KEPT:
            continue
        rest, tail = heights[:-k], heights[-k:]
        typical = statistics.median(rest)
        if max(tail) < SMALL * typical and min(rest) >= EVEN * typical:
            return k
    return 0
