"""Work a frame cannot need: pixels outside the camera's lane region, and frames that
show nothing new.

A fixed ALPR camera sees the same road for hours; recognition (~150-300 ms a frame) is
the flow's whole cost. Two cheap checks (well under 1 ms) skip it where no new plate can
be:

* lane region: per camera, the part of the frame where plates pass (fractions x, y, w, h
  of the frame, set in ALPR_LANE_REGIONS); the recogniser sees only that part;
* unchanged frames: a frame whose lane region differs from the camera's previous
  recognised frame by less than a threshold (mean absolute difference of 32x18 grey
  thumbnails, in grey levels) cannot show a new plate; JPEG noise alone gives ~0.5;
* moving regions: in a frame that did change, a new plate can only be where it changed.
  The thumbnail cells that changed by more than MOTION_CELL_THRESHOLD, grown by
  MOTION_MARGIN_CELLS on every side, give boxes, and the detector looks only inside
  them (at the scale it would see the whole frame at, so a far plate is as findable).
  Where they would cover more than MAX_MOTION_SHARE of the frame (the first frame,
  headlights sweeping the scene, a camera moved) the detector sees the whole frame.

Each camera's frames reach one worker in capture order, so the decisions are the same on
every replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from recognizers.base import boxes_overlap

__all__ = [
    "MAX_MOTION_SHARE",
    "MOTION_CELL_THRESHOLD",
    "MOTION_MARGIN_CELLS",
    "THUMB_SIZE",
    "FrameChange",
    "UnchangedFrames",
    "lane_view",
    "moving_regions",
]

THUMB_SIZE = (32, 18)  # keeps a car's movement, drops sensor and JPEG noise
# A thumbnail cell (40x40 px of a 720p frame) whose mean grey level moved by more than
# this has something moving in it: JPEG and sensor noise average out over a cell.
MOTION_CELL_THRESHOLD = 6.0
# Moving boxes covering more of the frame than this: detect on the whole frame (cropping
# would save little, and a scene-wide change is lighting, not a vehicle).
MAX_MOTION_SHARE = 0.6
# Changed cells are grown by this many cells (80 px of a 720p frame) on every side. The
# detector needs context: its squeeze-excitation blocks pool over the whole input, and a
# far plate at the centre of a tight box was missed. Synthetic severe passes, 200 frames:
# whole frames 157 read right; grown by 1 cell, 153 (49% of the frame detected on
# average); by 2, 158 (62%).
MOTION_MARGIN_CELLS = 2

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


@dataclass(frozen=True)
class FrameChange:
    """How a frame differs from its camera's last recognised frame.

    unchanged: nothing new can be in it (skip it).
    regions: where something moved, as boxes in the frame's pixels; None means the
        whole frame (no earlier frame, or change nearly everywhere).
    """

    unchanged: bool
    regions: tuple[Box, ...] | None


def lane_view(image: NDArray[np.uint8], region: Sequence[float] | None) -> NDArray[np.uint8]:
    """The part of `image` inside `region` (x, y, w, h as fractions of the frame), or the
    whole image when region is None. A view, not a copy."""
    if region is None:
        return image
    x, y, w, h = region
    rows, cols = image.shape[:2]
    x0, y0 = round(x * cols), round(y * rows)
    x1, y1 = round((x + w) * cols), round((y + h) * rows)
    return image[max(0, y0) : min(rows, y1), max(0, x0) : min(cols, x1)]


def _thumbnail(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)


class UnchangedFrames:
    """Remembers each camera's last recognised frame (as a thumbnail)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._last: dict[str, NDArray[np.float32]] = {}

    def is_unchanged(self, camera_id: str, image: NDArray[np.uint8]) -> bool:
        """True when `image` differs from the camera's last recognised frame by less than
        the threshold. A frame that is recognised becomes the new reference; a skipped one
        does not (a slow drift still adds up to a change)."""
        return self.compare(camera_id, image).unchanged

    def compare(self, camera_id: str, image: NDArray[np.uint8]) -> FrameChange:
        """is_unchanged, and for a changed frame where it moved (moving_regions)."""
        if image.size == 0:
            return FrameChange(False, None)
        thumb = _thumbnail(image)
        last = self._last.get(camera_id)
        if last is None:
            self._last[camera_id] = thumb
            return FrameChange(False, None)
        diff = np.abs(thumb - last)
        if float(np.mean(diff)) < self.threshold:
            return FrameChange(True, ())
        self._last[camera_id] = thumb
        return FrameChange(False, moving_regions(diff, image.shape))


def moving_regions(diff: NDArray[np.float32], shape: tuple[int, ...]) -> tuple[Box, ...] | None:
    """Boxes (in pixels of a frame of `shape`) around the thumbnail cells of `diff` (per
    cell absolute grey-level change) that moved by more than MOTION_CELL_THRESHOLD, each
    grown by MOTION_MARGIN_CELLS; None (the whole frame) if they cover more than
    MAX_MOTION_SHARE of it. Overlapping boxes are merged, so no pixel is detected twice."""
    moving = (diff > MOTION_CELL_THRESHOLD).astype(np.uint8)
    if not moving.any():
        return ()
    side = 2 * MOTION_MARGIN_CELLS + 1
    grown = cv2.dilate(moving, np.ones((side, side), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    cells = [tuple(int(v) for v in stats[i, :4]) for i in range(1, count)]
    merged = _merge_overlapping(cells)
    cols, rows = diff.shape[1], diff.shape[0]
    if sum(w * h for _, _, w, h in merged) > MAX_MOTION_SHARE * cols * rows:
        return None
    height, width = shape[:2]
    boxes = []
    for cx, cy, cw, ch in merged:
        x0, y0 = cx * width // cols, cy * height // rows
        x1, y1 = -(-(cx + cw) * width // cols), -(-(cy + ch) * height // rows)
        boxes.append((x0, y0, min(width, x1) - x0, min(height, y1) - y0))
    return tuple(sorted(boxes))


def _merge_overlapping(boxes: list[tuple[int, ...]]) -> list[Box]:
    """Bounding boxes merged until none overlap (cell units)."""
    out: list[Box] = [(int(x), int(y), int(w), int(h)) for x, y, w, h in boxes]
    i = 0
    while i < len(out):
        j = next((j for j in range(i + 1, len(out)) if boxes_overlap(out[i], out[j])), None)
        if j is None:
            i += 1
            continue
        out[i] = _union(out[i], out.pop(j))
        i = 0  # the grown box may now reach one already passed
    return out


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)
