"""Text box geometry of the PP-OCR reader: DB boxes from a probability map (min-area
rectangles, their score, unclipping), crops rectified from them, and the boxes the
reading strategy derives (widened, joined pairs, text cut by a region's edge)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import pyclipper
from numpy.typing import NDArray

from recognizers.base import Box

__all__ = [
    "Polygon", "box_in_frame", "box_score", "centre_in", "crop_polygon", "cut_by_edge",
    "joined_pairs", "min_box", "polygon_bounds", "side_lengths", "text_bands", "unclip",
    "widen",
]

# 4 x 2 corners (x, y): top-left, top-right, bottom-right, bottom-left.
Polygon = NDArray[np.float32]

# The detector splits a plate number at a wide space or a centre graphic ("59 CADI",
# "1A MW240", "002 [logo] HHM"): neighbouring boxes on one line, of about the same
# height and at most this x their height apart, are also read as one.
JOIN_GAP = 1.6
JOIN_HEIGHT_RATIO = 0.75  # shorter / taller box height

# Detecting only where a frame moved (PPOCRRecognizer.detect's regions): text within this
# many px of a region's top or bottom edge (or a word gap of its left or right one) may
# be cut, and is detected again in a full-width band reaching this x its height above
# and below it.
EDGE_PX = 2
TEXT_BAND = 1.0


def order_corners(pts: NDArray[np.float32]) -> Polygon:
    """4 corners as top-left, top-right, bottom-right, bottom-left."""
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], np.float32)


def min_box(points: NDArray[np.float32]) -> tuple[Polygon, float]:
    """Min-area rectangle of points: (ordered corners, its shorter side)."""
    rect = cv2.minAreaRect(points.reshape(-1, 1, 2).astype(np.float32))
    return order_corners(cv2.boxPoints(rect)), float(min(rect[1]))


def box_score(prob: NDArray[np.float32], corners: Polygon) -> float:
    """Mean text probability inside the polygon (PaddleOCR's "fast" score)."""
    h, w = prob.shape
    x0 = int(np.clip(np.floor(corners[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    shifted = (corners - np.array([x0, y0], np.float32)).round().astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def unclip(corners: Polygon, ratio: float) -> NDArray[np.float32] | None:
    """Grow the polygon by area * ratio / perimeter (DB's kernels are shrunk text)."""
    area = abs(cv2.contourArea(corners))
    perimeter = cv2.arcLength(corners.reshape(-1, 1, 2), True)
    if perimeter <= 0:
        return None
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(corners.round().astype(np.int64).tolist(), pyclipper.JT_ROUND,
                   pyclipper.ET_CLOSEDPOLYGON)  # fmt: skip
    grown = offset.Execute(area * ratio / perimeter)
    if len(grown) != 1:
        return None
    return np.asarray(grown[0], np.float32)


def polygon_bounds(poly: Polygon, shape: tuple[int, ...]) -> Box:
    """Axis-aligned (x, y, w, h) of a polygon, clipped to an image of `shape`."""
    x0 = int(max(0, math.floor(poly[:, 0].min())))
    y0 = int(max(0, math.floor(poly[:, 1].min())))
    x1 = int(min(shape[1], math.ceil(poly[:, 0].max())))
    y1 = int(min(shape[0], math.ceil(poly[:, 1].max())))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def side_lengths(poly: Polygon) -> tuple[float, float]:
    """(width, height) of an ordered quadrilateral: the longer of each opposite pair."""
    w = max(np.linalg.norm(poly[0] - poly[1]), np.linalg.norm(poly[3] - poly[2]))
    h = max(np.linalg.norm(poly[0] - poly[3]), np.linalg.norm(poly[1] - poly[2]))
    return float(w), float(h)


def widen(poly: Polygon, k: float, shape: tuple[int, ...]) -> Polygon:
    """The polygon with its left and right edges moved out by k x its height, along
    its own baseline direction (so a tilted text line stays tilted), clipped to the image."""
    _, h = side_lengths(poly)
    along = poly[1] - poly[0]
    along = along / max(1e-6, float(np.linalg.norm(along)))
    shift = (k * h * along).astype(np.float32)
    out = poly.copy()
    out[[0, 3]] -= shift
    out[[1, 2]] += shift
    out[:, 0] = np.clip(out[:, 0], 0, shape[1])
    out[:, 1] = np.clip(out[:, 1], 0, shape[0])
    return out


def joined_pairs(polys: Sequence[Polygon]) -> list[Polygon]:
    """One box around each pair of boxes that look like two parts of one text line:
    heights within JOIN_HEIGHT_RATIO, vertical overlap of most of the shorter one, and a
    horizontal gap of at most JOIN_GAP x the taller height. Left part first."""
    spans = []
    for poly in polys:
        x0, x1 = float(poly[:, 0].min()), float(poly[:, 0].max())
        y0, y1 = float(poly[:, 1].min()), float(poly[:, 1].max())
        spans.append((x0, x1, y0, y1, side_lengths(poly)[1]))
    joined: list[Polygon] = []
    for i, (_, ax1, ay0, ay1, ah) in enumerate(spans):
        for j, (bx0, _, by0, by1, bh) in enumerate(spans):
            if i == j or bx0 < ax1 - 0.25 * ah:  # b must start right of a's end
                continue
            if min(ah, bh) < JOIN_HEIGHT_RATIO * max(ah, bh):
                continue
            overlap = min(ay1, by1) - max(ay0, by0)
            if overlap < 0.6 * min(ay1 - ay0, by1 - by0):
                continue
            if bx0 - ax1 > JOIN_GAP * max(ah, bh):
                continue
            points = np.concatenate([polys[i], polys[j]]).astype(np.float32)
            joined.append(min_box(points)[0])
    return joined


def crop_polygon(image: NDArray[np.uint8], poly: Polygon) -> NDArray[np.uint8]:
    """The text inside `poly`, rectified to an upright rectangle (perspective warp).

    The warp follows the detected box exactly: a tight crop keeps the state name and
    slogan (separate detections) out of the plate number's crop.
    """
    w, h = side_lengths(poly)
    w, h = max(1, round(w)), max(1, round(h))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(poly.astype(np.float32), dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def box_in_frame(box: Box, origin: tuple[int, int], k: float) -> Box:
    """A box of a crop taken at `origin` and enlarged `k` times, in the frame's pixels."""
    bx, by, bw, bh = box
    x, y = origin
    return (x + int(bx / k), y + int(by / k), max(1, int(bw / k)), max(1, int(bh / k)))


def cut_by_edge(poly: Polygon, region: Box, shape: tuple[int, ...]) -> bool:
    """Whether `poly` may continue past an edge of `region` that is not an edge of the
    image: it reaches the top or bottom edge, or comes within a word gap (its own height)
    of the left or right one ("CAM-12" inside, its line's clock outside)."""
    x, y, w, h = region
    rows, cols = shape[:2]
    xs, ys = poly[:, 0], poly[:, 1]
    gap = float(ys.max() - ys.min())
    return bool(
        (x > 0 and xs.min() <= x + gap)
        or (y > 0 and ys.min() <= y + EDGE_PX)
        or (x + w < cols and xs.max() >= x + w - gap)
        or (y + h < rows and ys.max() >= y + h - EDGE_PX)
    )


def text_bands(polys: Sequence[Polygon], shape: tuple[int, ...]) -> list[Box]:
    """Full-width bands around the lines of `polys` (each TEXT_BAND x its height above
    and below), overlapping bands merged."""
    rows, cols = shape[:2]
    spans = []
    for poly in polys:
        top, bottom = float(poly[:, 1].min()), float(poly[:, 1].max())
        grow = TEXT_BAND * (bottom - top)
        spans.append((max(0, int(top - grow)), min(rows, int(bottom + grow) + 1)))
    spans.sort()
    merged: list[list[int]] = []
    for top, bottom in spans:
        if merged and top <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], bottom)
        else:
            merged.append([top, bottom])
    return [(0, top, cols, bottom - top) for top, bottom in merged]


def centre_in(poly: Polygon, box: Box) -> bool:
    cx, cy = (float(v) for v in poly.mean(axis=0))
    x, y, w, h = box
    return x <= cx < x + w and y <= cy < y + h
