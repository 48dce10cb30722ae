"""Work a frame cannot need: pixels outside the camera's lane region, and frames that
show nothing new.

A fixed ALPR camera sees the same road for hours; recognition (~150-300 ms a frame) is
the flow's whole cost. Two cheap checks (well under 1 ms) skip it where no new plate can
be:

* lane region: per camera, the part of the frame where plates pass (fractions x, y, w, h
  of the frame, set in ALPR_LANE_REGIONS); the recogniser sees only that part;
* unchanged frames: a frame whose lane region differs from the camera's previous
  recognised frame by less than a threshold (mean absolute difference of 32x18 grey
  thumbnails, in grey levels) cannot show a new plate; JPEG noise alone gives ~0.5.

Each camera's frames reach one worker in capture order, so the decisions are the same on
every replay.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["THUMB_SIZE", "UnchangedFrames", "lane_view"]

THUMB_SIZE = (32, 18)  # keeps a car's movement, drops sensor and JPEG noise


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
        if image.size == 0:
            return False
        thumb = _thumbnail(image)
        last = self._last.get(camera_id)
        if last is not None and float(np.mean(np.abs(thumb - last))) < self.threshold:
            return True
        self._last[camera_id] = thumb
        return False
