"""Seeded augmentation of a labelled plate region: the variety cameras give that 3,700
real crops do not (where the detector's box ends, tilt, blur, distance, light, IR grey,
JPEG). Geometry moves the region's corners in the source image, so a looser box pulls in
the real surroundings (frame, state name, bolts), not padding."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from recognizers.boxes import crop_polygon
from recognizers.training.samples import Sample

# Per side, how far a box's edge may move, as a share of the region's height: a detector
# box is tight or loose by about a character; a whole crop is cut into only a little (a
# tight crop's end characters are close to its edges).
_SIDE = {"whole": (-0.05, 0.12), "line": (-0.08, 0.7)}
_TOP_BOTTOM = {"whole": (-0.06, 0.06), "line": (-0.08, 0.25)}
_CORNER_JITTER = 0.04  # of the height, per corner: perspective and a box's slight tilt


def jitter_poly(sample: Sample, rng: np.random.Generator) -> NDArray[np.float32]:
    """The sample's corners moved as a detector's box might have been."""
    poly = sample.poly.astype(np.float32)
    across = poly[1] - poly[0]
    down = poly[3] - poly[0]
    height = float(np.linalg.norm(down)) or 1.0
    ux = across / (np.linalg.norm(across) or 1.0)
    uy = down / height
    lo, hi = _SIDE[sample.kind]
    left, right = rng.uniform(lo, hi, 2) * height
    lo, hi = _TOP_BOTTOM[sample.kind]
    top, bottom = rng.uniform(lo, hi, 2) * height
    out = poly.copy()
    out[0] += -left * ux - top * uy
    out[1] += right * ux - top * uy
    out[2] += right * ux + bottom * uy
    out[3] += -left * ux + bottom * uy
    out += rng.uniform(-_CORNER_JITTER, _CORNER_JITTER, (4, 2)).astype(np.float32) * height
    return out


def photometric(crop: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    """Distance, blur, light, IR grey and JPEG, each with its own chance."""
    h, w = crop.shape[:2]
    if rng.random() < 0.35:  # farther away: fewer pixels, scaled back up by the reader
        k = rng.uniform(0.3, 0.75)
        small = cv2.resize(crop, (max(4, round(w * k)), max(4, round(h * k))),
                           interpolation=cv2.INTER_AREA)
        crop = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        crop = cv2.GaussianBlur(crop, (3, 3), rng.uniform(0.5, 1.2))
    if rng.random() < 0.1:  # motion blur along the road
        n = int(rng.integers(3, 6))
        kernel = np.zeros((n, n), np.float32)
        kernel[n // 2] = 1.0 / n
        crop = cv2.filter2D(crop, -1, kernel)
    alpha, beta = rng.uniform(0.6, 1.4), rng.uniform(-40, 40)
    crop = cv2.convertScaleAbs(crop, alpha=alpha, beta=beta)
    if rng.random() < 0.3:
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        crop = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.25:
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 80))])
        if ok:
            crop = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return crop


def augmented(sample: Sample, rng: np.random.Generator) -> NDArray[np.uint8]:
    """One training view of the sample."""
    return photometric(crop_polygon(sample.image, jitter_poly(sample, rng)), rng)
