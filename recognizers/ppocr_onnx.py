"""PP-OCR plate reader: DB text detection, CTC recognition, plate choice.

Detection is PP-OCRv4 mobile (shipped, graph-folded, in recognizers/models/), recognition
PP-OCRv6 small (shipped inside the `rapidocr` wheel); nothing downloads, ever. RapidOCR
itself is not used: its model check falls back to a hub download when a file is missing.
Pre- and post-processing follow PaddleOCR's:

* detection: long side capped at `det_max_side`, padded to multiples of 32, BGR scaled
  to -1..1 (measured better than ImageNet mean/std, see _DET_MEAN); probability
  map > 0.3, contours, min-area rectangles scored by their mean probability, grown back
  ("unclipped") because DB is trained on shrunk text kernels.
* recognition: each box cut out along its rotated rectangle, height 48, width by aspect
  (multiple of 8, at most 320), (x/255 - 0.5) / 0.5; greedy CTC decoding.

Detection runs on OpenVINO by default or on onnxruntime (recognizers/det_runtime.py:
bf16 where the CPU has it, ~1.6x faster), recognition on onnxruntime. Model calls are ~90%
of a frame's time, a little more than half of it detection (`python -m benchmarks.stages`;
PP-OCRv6 det small: ~3.4x slower again, for the same accuracy).
"""

from __future__ import annotations

import importlib.resources
import math
import string
from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import onnxruntime as ort
import pyclipper
from numpy.typing import NDArray

from recognizers.base import Alternatives, Box, PlateCandidate
from recognizers.det_runtime import DetPrecision, DetRuntime, load_det_runtime, ort_session
from recognizers.plate_text import (
    TextRead,
    choose_candidates,
    fuse_looks,
    normalise,
    normalise_read,
    prefer_wider,
    reject_reason,
)
from recognizers.small_print import MIN_KEPT, TAIL_LENGTHS, char_heights, small_tail

__all__ = [
    "DET_MODEL_NAME",
    "DET_SOURCE_MODEL_NAME",
    "REC_MODEL_NAME",
    "LineRead",
    "PPOCRRecognizer",
    "default_model_path",
]

# The detector as shipped: PP-OCRv4 det with its scalar affine and hard-swish ops folded
# (tools/graph_folding.py; same output, ~13% less detection time). The export it is folded
# from ships beside it.
DET_MODEL_NAME = "ch_PP-OCRv4_det_folded.onnx"
DET_SOURCE_MODEL_NAME = "ch_PP-OCRv4_det_infer.onnx"
REC_MODEL_NAME = "PP-OCRv6_rec_small.onnx"

# 4 x 2 corners (x, y): top-left, top-right, bottom-right, bottom-left.
Polygon = NDArray[np.float32]

# (x/255 - 0.5) / 0.5 on BGR, as RapidOCR feeds PP-OCR det (its v4 and v6 configs alike).
# PaddleOCR's usual ImageNet mean/std read fewer plates with v6 det: US dev photos 63.9%
# exact vs 69.4%, synthetic 98 vs 100 of 100; RGB order: 68.1%.
_DET_MEAN = np.full(3, 127.5, np.float32)
_DET_STD = np.full(3, 127.5, np.float32)
_DET_THRESH = 0.3  # pixel is text if p > this
_DET_MAX_UPSCALE = 3.0
_DET_UPSCALE_TO = 960
_BOX_THRESH = 0.5  # a region is text if its mean p >= this
_UNCLIP_RATIO = 1.5  # DB's expansion: offset = area * ratio / perimeter
_MIN_SIDE = 3  # px at detector scale; smaller regions are specks
_MAX_CANDIDATES = 200

_REC_H = 48
_REC_MAX_W = 320  # the width the model was trained at; wider crops are squeezed
_REC_BATCH = 8
_REC_BATCH_SPREAD = 1.15  # widest / narrowest crop in one batch (so <= ~13% padding)

# A plate's text box is wider than tall: reading tall or needle-thin boxes is wasted time.
_MIN_TEXT_ASPECT = 0.8
# ... and not a long line: a camera's date-and-time overlay (aspect ~12.6) was over a
# third of the recogniser's work on synthetic frames. Over the 180 photos no plate was
# read from a box longer than 7.4 x its height.
_MAX_TEXT_ASPECT = 10.0
_MIN_TEXT_HEIGHT = 8  # px in the original image: below this nothing is legible
# Plate-like reads are read again from a box grown sideways by this x its height on each
# side (about one character), in case the detector stopped short of an end character.
_WIDEN = 0.5
# ... if shorter than this. Over the 180 photos, no read of 7 characters or more was
# ever extended (202 tries; 6 of 158 shorter reads were), yet those second reads were
# over a third of the recogniser's input columns (recogniser 50 -> 32 ms per frame).
_WIDEN_SHORTER_THAN = 7
# The detector splits a plate number at a wide space or a centre graphic ("59 CADI",
# "1A MW240", "002 [logo] HHM"): neighbouring boxes on one line, of about the same
# height and at most this x their height apart, are also read as one.
_JOIN_GAP = 1.6
_JOIN_HEIGHT_RATIO = 0.75  # shorter / taller box height
# Zoomed second look (PPOCRRecognizer._zoom_in): for plate-like reads under this
# confidence (the default alert threshold: reads that could not alert on their own),
# the box grown by (x, y) x its size, enlarged to text this many px tall, and a closer
# read accepted if this similar to the first (difflib ratio). Margins of 0.3-0.5 x 0.5-0.8
# and heights 40-56 px all gained 2-4 US dev images; these lost no EU image.
_ZOOM_BELOW = 0.8
_ZOOM_MARGIN = (0.3, 0.5)
_ZOOM_TEXT_H = 48
_ZOOM_SIMILAR = 0.5
# A sure read this short, with a digit, may still have lost a group to the detector
# ("MW240" of "1A MW240": the "1A" stands apart and is not detected at frame scale). Such
# reads are looked at again with these wider margins, at these text heights in turn until
# one finds the group (PPOCRRecognizer._lost_group). One height alone found it at some
# margins and not at others; two found it at all tried. US dev +1 image, EU unchanged,
# ~+10 ms per frame on average (benchmarks/RESULTS.md).
_ZOOM_SHORTER_THAN = 6
_ZOOM_SHORT_MARGIN = (0.8, 0.8)
_ZOOM_SHORT_TEXT_H = (56, 72)
# Detecting only where a frame moved (PPOCRRecognizer.detect's regions): text within this
# many px of a region's top or bottom edge (or a word gap of its left or right one) may
# be cut, and is detected again in a full-width band reaching this x its height above
# and below it.
_EDGE_PX = 2
_TEXT_BAND = 1.0
# Each character's likeliest plate characters (A-Z, 0-9) are kept as its alternatives,
# up to this many and down to this probability: fitting a read to a serial format
# (recognizers/serial_formats.py) chooses among them.
_ALTERNATIVES = 3
_MIN_ALTERNATIVE_P = 0.01
_PLATE_CHARS = frozenset(string.ascii_uppercase + string.digits)


class LineRead(NamedTuple):
    """One text line read: its text, one probability and one set of alternatives per
    character."""

    text: str
    char_probs: tuple[float, ...]
    alternatives: Alternatives


# Where shipped models live, searched in order: the project's own, then the rapidocr wheel.
_SHIPPED_MODEL_DIRS = (("recognizers", "models"), ("rapidocr", "models"))


def default_model_path(name: str, model_dir: Path | None = None) -> Path:
    """`model_dir / name`, or the copy shipped with the project or the rapidocr wheel."""
    if model_dir is not None:
        candidates = [Path(model_dir) / name]
    else:
        candidates = [
            Path(str(importlib.resources.files(package) / folder / name))
            for package, folder in _SHIPPED_MODEL_DIRS
        ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"OCR model not found: {' or '.join(map(str, candidates))}")


def _load_charset(session: ort.InferenceSession) -> list[str]:
    """Index -> character of the CTC output, as PaddleOCR's CTCLabelDecode builds it.

    Index 0 is the CTC blank, then the model's "character" metadata list (one per line),
    then a space PaddleOCR appends (use_space_char). Checked against the output width.
    """
    meta = session.get_modelmeta().custom_metadata_map
    if "character" not in meta:
        raise ValueError("recognition model has no 'character' metadata")
    chars = ["<blank>", *meta["character"].split("\n"), " "]
    width = session.get_outputs()[0].shape[-1]
    if isinstance(width, int) and width != len(chars):
        raise ValueError(f"charset has {len(chars)} entries but the model outputs {width}")
    return chars


def _order_corners(pts: NDArray[np.float32]) -> Polygon:
    """4 corners as top-left, top-right, bottom-right, bottom-left."""
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], np.float32)


def _min_box(points: NDArray[np.float32]) -> tuple[Polygon, float]:
    """Min-area rectangle of points: (ordered corners, its shorter side)."""
    rect = cv2.minAreaRect(points.reshape(-1, 1, 2).astype(np.float32))
    return _order_corners(cv2.boxPoints(rect)), float(min(rect[1]))


def _box_score(prob: NDArray[np.float32], corners: Polygon) -> float:
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


def _unclip(corners: Polygon, ratio: float) -> NDArray[np.float32] | None:
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


def _polygon_bounds(poly: Polygon, shape: tuple[int, ...]) -> Box:
    """Axis-aligned (x, y, w, h) of a polygon, clipped to an image of `shape`."""
    x0 = int(max(0, math.floor(poly[:, 0].min())))
    y0 = int(max(0, math.floor(poly[:, 1].min())))
    x1 = int(min(shape[1], math.ceil(poly[:, 0].max())))
    y1 = int(min(shape[0], math.ceil(poly[:, 1].max())))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def _side_lengths(poly: Polygon) -> tuple[float, float]:
    """(width, height) of an ordered quadrilateral: the longer of each opposite pair."""
    w = max(np.linalg.norm(poly[0] - poly[1]), np.linalg.norm(poly[3] - poly[2]))
    h = max(np.linalg.norm(poly[0] - poly[3]), np.linalg.norm(poly[1] - poly[2]))
    return float(w), float(h)


def _width_batches(widths: dict[int, int]) -> list[list[int]]:
    """Crop indices grouped into batches of similar width (see _REC_BATCH_SPREAD)."""
    batches: list[list[int]] = []
    for i in sorted(widths, key=widths.__getitem__):
        last = batches[-1] if batches else None
        if (
            last is not None
            and len(last) < _REC_BATCH
            and widths[i] <= _REC_BATCH_SPREAD * widths[last[0]]
        ):
            last.append(i)
        else:
            batches.append([i])
    return batches


def _widen(poly: Polygon, k: float, shape: tuple[int, ...]) -> Polygon:
    """The polygon with its left and right edges moved out by k x its height, along
    its own baseline direction (so a tilted text line stays tilted), clipped to the image."""
    _, h = _side_lengths(poly)
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
    heights within _JOIN_HEIGHT_RATIO, vertical overlap of most of the shorter one, and a
    horizontal gap of at most _JOIN_GAP x the taller height. Left part first."""
    spans = []
    for poly in polys:
        x0, x1 = float(poly[:, 0].min()), float(poly[:, 0].max())
        y0, y1 = float(poly[:, 1].min()), float(poly[:, 1].max())
        spans.append((x0, x1, y0, y1, _side_lengths(poly)[1]))
    joined: list[Polygon] = []
    for i, (_, ax1, ay0, ay1, ah) in enumerate(spans):
        for j, (bx0, _, by0, by1, bh) in enumerate(spans):
            if i == j or bx0 < ax1 - 0.25 * ah:  # b must start right of a's end
                continue
            if min(ah, bh) < _JOIN_HEIGHT_RATIO * max(ah, bh):
                continue
            overlap = min(ay1, by1) - max(ay0, by0)
            if overlap < 0.6 * min(ay1 - ay0, by1 - by0):
                continue
            if bx0 - ax1 > _JOIN_GAP * max(ah, bh):
                continue
            points = np.concatenate([polys[i], polys[j]]).astype(np.float32)
            joined.append(_min_box(points)[0])
    return joined


def crop_polygon(image: NDArray[np.uint8], poly: Polygon) -> NDArray[np.uint8]:
    """The text inside `poly`, rectified to an upright rectangle (perspective warp).

    The warp follows the detected box exactly: a tight crop keeps the state name and
    slogan (separate detections) out of the plate number's crop.
    """
    w, h = _side_lengths(poly)
    w, h = max(1, round(w)), max(1, round(h))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    m = cv2.getPerspectiveTransform(poly.astype(np.float32), dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def rec_width(crop: NDArray[np.uint8]) -> int:
    """Width of a crop at the recogniser's height, aspect kept, at most _REC_MAX_W."""
    return min(_REC_MAX_W, math.ceil(_REC_H * crop.shape[1] / max(1, crop.shape[0])))


def rec_tensor(crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """BGR crops as the recognition model takes them: height 48, width by aspect, scaled
    to -1..1, padded with 0 (mid grey) to the widest, a multiple of 8 (at least 32).
    Training (recognizers/training) feeds the model through this too."""
    width = max(32, -(-max(rec_width(c) for c in crops) // 8) * 8)
    batch = np.zeros((len(crops), 3, _REC_H, width), np.float32)
    for i, crop in enumerate(crops):
        rw = rec_width(crop)
        resized = cv2.resize(crop, (rw, _REC_H), interpolation=cv2.INTER_LINEAR)
        batch[i, :, :, :rw] = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
    return batch


def ctc_emissions(probs: NDArray[np.float32]) -> list[tuple[int, int, int]]:
    """Greedy CTC path: (charset index, first step, last step) of each character it
    emits, merging repeated steps and dropping blanks (index 0)."""
    out: list[tuple[int, int, int]] = []
    prev = -1
    for step, idx in enumerate(probs.argmax(axis=1).tolist()):
        if idx != 0 and idx == prev:
            out[-1] = (idx, out[-1][1], step)
        elif idx != 0:
            out.append((idx, step, step))
        prev = idx
    return out


def ctc_greedy(probs: NDArray[np.float32], charset: Sequence[str]) -> tuple[str, tuple[float, ...]]:
    """Greedy CTC: merge repeated steps, drop blanks; a character's probability is the
    highest softmax over the steps that emitted it."""
    return _decode(probs, ctc_emissions(probs), charset)


def ctc_alternatives(
    probs: NDArray[np.float32],
    emitted: Sequence[tuple[int, int, int]],
    columns: NDArray[np.intp],
    chars: Sequence[str],
) -> Alternatives:
    """Per emitted character: the likeliest of `chars` (the charset entries at
    `columns`) over the steps that emitted it, each at its highest softmax there."""
    if not emitted:
        return ()
    sub = probs[:, columns]
    out = []
    for _, a, b in emitted:
        seg = sub[a : b + 1].max(axis=0)
        top = np.argsort(-seg)[:_ALTERNATIVES]
        out.append(tuple((chars[i], float(seg[i])) for i in top if seg[i] >= _MIN_ALTERNATIVE_P))
    return tuple(out)


def _decode(
    probs: NDArray[np.float32], emitted: Sequence[tuple[int, int, int]], charset: Sequence[str]
) -> tuple[str, tuple[float, ...]]:
    """ctc_greedy's text and probabilities from an already computed CTC path."""
    best_p = probs.max(axis=1)
    text = "".join(charset[idx] for idx, _, _ in emitted)
    conf = tuple(
        float(min(1.0, max(0.0, best_p[a : b + 1].max()))) for _, a, b in emitted
    )
    return text, conf


def without_small_print(
    crop: NDArray[np.uint8], emitted: Sequence[tuple[int, int, int]], step_px: float,
    line: LineRead,
) -> LineRead:
    """The read with a trailing run of small characters dropped (recognizers.small_print);
    `emitted` is the crop's CTC path (one item per character of the read), `step_px` the
    input columns per output step."""
    text = line.text
    plate = [i for i, ch in enumerate(text) if ch.isascii() and ch.isalnum()]
    if len(plate) < MIN_KEPT + min(TAIL_LENGTHS):
        return line
    resized = cv2.resize(crop, (rec_width(crop), _REC_H), interpolation=cv2.INTER_LINEAR)
    spans = [(emitted[i][1], emitted[i][2]) for i in plate]
    k = small_tail(char_heights(resized, spans, step_px))
    if not k:
        return line
    cut = plate[-k]
    kept = text[:cut].rstrip()
    while kept and not kept[-1].isalnum():  # a separator before the small print
        kept = kept[:-1]
    return LineRead(kept, line.char_probs[: len(kept)], line.alternatives[: len(kept)])


class PPOCRRecognizer:
    """PP-OCR det (v4 mobile, on `det_runtime`) + rec (v6 small, on onnxruntime), with
    plate choice.

    One instance holds two compiled models (~130 MB); it is not safe to call from several
    threads at once: give each worker its own (the flow does).
    """

    def __init__(
        self,
        det_model: Path | None = None,
        rec_model: Path | None = None,
        det_max_side: int = 960,
        threads: int = 1,
        det_runtime: DetRuntime = "openvino",
        det_precision: DetPrecision = "auto",
    ) -> None:
        if det_max_side < 32:
            raise ValueError("det_max_side must be >= 32")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.det_max_side = int(det_max_side)
        det_path = Path(det_model or default_model_path(DET_MODEL_NAME))
        self._det = load_det_runtime(det_path, det_runtime, threads, det_precision)
        self._rec = ort_session(Path(rec_model or default_model_path(REC_MODEL_NAME)), threads)
        self._rec_input = self._rec.get_inputs()[0].name
        self._charset = _load_charset(self._rec)
        plate_columns = [i for i, c in enumerate(self._charset) if c in _PLATE_CHARS]
        self._plate_columns = np.array(plate_columns, np.intp)
        self._plate_chars = [self._charset[i] for i in plate_columns]

    @property
    def det_precision(self) -> str:
        """The arithmetic the detector runs in: "f32" or "bf16" (recognizers/det_runtime.py)."""
        return self._det.precision

    # ------------------------------------------------------------------ detection

    def _det_scale(self, shape: tuple[int, ...], max_side: int) -> float:
        """The scale from an image of `shape` to the detector's input."""
        # Large images shrink to det_max_side. Small ones are enlarged to _DET_UPSCALE_TO
        # (at most _DET_MAX_UPSCALE x): the detector misses text under ~10 px, a whole
        # plate number in a 600 px photo; enlarging further blurs more than it reveals
        # (EU photos, ~500 px: 95.4% loose enlarged to 960 px, 92.6% to 1280 px).
        long_side = max(shape[:2])
        if long_side > max_side:
            return max_side / long_side
        target = min(max_side, _DET_UPSCALE_TO)
        return max(1.0, min(_DET_MAX_UPSCALE, target / long_side))

    def _det_prepare(
        self, image: NDArray[np.uint8], max_side: int, scale: float | None = None
    ) -> tuple[NDArray[np.float32], float]:
        """Normalised NCHW tensor and the scale from the image to it (`scale`, or the
        one _det_scale gives for this image)."""
        h, w = image.shape[:2]
        if scale is None:
            scale = self._det_scale(image.shape, max_side)
        rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
        if scale == 1:
            resized = image
        else:
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(image, (rw, rh), interpolation=interpolation)
        # Pad (not stretch) to multiples of 32: the aspect ratio, and so the letter
        # shapes, stay as the camera saw them, and box coordinates map back by one scale.
        ph, pw = -(-rh // 32) * 32, -(-rw // 32) * 32
        x = np.zeros((1, 3, ph, pw), np.float32)  # 0 after normalising = the mean colour
        # Channel by channel straight into NCHW: the same values as normalising HWC and
        # transposing, ~7x faster (the transposed copy cost ~5 ms per 720p frame).
        for c, channel in enumerate(cv2.split(resized)):
            plane = x[0, c, :rh, :rw]
            np.subtract(channel, _DET_MEAN[c], out=plane, dtype=np.float32)
            np.divide(plane, _DET_STD[c], out=plane)
        return x, scale

    def detect(
        self,
        image: NDArray[np.uint8],
        max_side: int | None = None,
        regions: Sequence[Box] | None = None,
    ) -> list[Polygon]:
        """Text regions of a BGR image: 4-corner polygons in image pixels, ordered
        top-left, top-right, bottom-right, bottom-left. `max_side` caps the detector's
        input (default: det_max_side); the image's own long side means "as it is".

        `regions` (x, y, w, h boxes, not overlapping) limits detection to those parts of
        the image, each seen at the scale the whole image would be seen at: the same
        text is found in them, for a share of the time (flows/frame_filter.py finds
        where a frame moved). None means the whole image. Text a region's edge cuts
        (a clock whose seconds changed, "44:10 CAM-1" of a longer overlay line) is
        detected again in a band the image's width across its line (_TEXT_BAND), so it
        is read whole, as it would be in the whole image.
        """
        image = _as_bgr(image)
        if image.shape[0] < 4 or image.shape[1] < 4:
            return []
        max_side = max_side or self.det_max_side
        if regions is None:
            polys = self._detect_in(image, max_side, None)
        else:
            scale = self._det_scale(image.shape, max_side)
            polys, cut = [], []
            for region in regions:
                for poly in self._detect_at(image, region, max_side, scale):
                    polys.append(poly)
                    if _cut_by_edge(poly, region, image.shape):
                        cut.append(poly)
            if cut:
                bands = _text_bands(cut, image.shape)
                polys = [p for p in polys if not any(_centre_in(p, b) for b in bands)]
                for band in bands:
                    polys += self._detect_at(image, band, max_side, scale)
        # Top to bottom, then left to right: a stable order for callers and tests.
        polys.sort(key=lambda p: (round(float(p[:, 1].min()) / 10), float(p[:, 0].min())))
        return polys

    def _detect_at(
        self, image: NDArray[np.uint8], region: Box, max_side: int, scale: float
    ) -> list[Polygon]:
        """detect() in one region of `image`, at `scale`, in `image`'s pixels."""
        x, y, w, h = region
        x0, y0 = max(0, x), max(0, y)
        part = image[y0 : y + h, x0 : x + w]
        if part.shape[0] < 4 or part.shape[1] < 4:
            return []
        polys = self._detect_in(part, max_side, scale)
        for poly in polys:
            poly[:, 0] += x0
            poly[:, 1] += y0
        return polys

    def _detect_in(
        self, image: NDArray[np.uint8], max_side: int, scale: float | None
    ) -> list[Polygon]:
        tensor, scale = self._det_prepare(image, max_side, scale)
        prob = self._det(tensor)[0, 0]
        bitmap = (prob > _DET_THRESH).astype(np.uint8)
        # PaddleOCR dilates by 2x2 so thin strokes still join into one region.
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        polys: list[Polygon] = []
        for contour in contours[:_MAX_CANDIDATES]:
            corners, short = _min_box(contour.reshape(-1, 2).astype(np.float32))
            if short < _MIN_SIDE or _box_score(prob, corners) < _BOX_THRESH:
                continue
            grown = _unclip(corners, _UNCLIP_RATIO)
            if grown is None:
                continue
            corners, short = _min_box(grown)
            if short < _MIN_SIDE + 2:
                continue
            corners = corners / scale
            corners[:, 0] = np.clip(corners[:, 0], 0, image.shape[1])
            corners[:, 1] = np.clip(corners[:, 1], 0, image.shape[0])
            polys.append(corners.astype(np.float32))
        return polys

    # ------------------------------------------------------------------ recognition

    def recognize(self, crops: Sequence[NDArray[np.uint8]]) -> list[LineRead]:
        """Read text crops (BGR, one line each): text, one probability and the likeliest
        plate characters (alternatives) per character.

        Only crops of nearly the same width share a batch: padding a short crop to a long
        one's width changes what CTC reads (seen: "NTC249" alone, "TC249" padded to 320).
        Results come back in the order of `crops`. An empty crop reads as ("", (), ()).
        A trailing run of half-height characters (New Jersey's small digits) is dropped:
        recognizers/small_print.py.
        """
        results = [LineRead("", (), ())] * len(crops)
        widths = {}
        for i, crop in enumerate(crops):
            if crop.ndim >= 2 and crop.shape[0] > 0 and crop.shape[1] > 0:
                widths[i] = rec_width(crop)
        for chunk in _width_batches(widths):
            tensor = rec_tensor([_as_bgr(crops[i]) for i in chunk])
            out = self._rec.run(None, {self._rec_input: tensor})[0]
            step_px = tensor.shape[3] / out.shape[1]
            for i, probs in zip(chunk, out, strict=True):
                emitted = ctc_emissions(probs)  # once: for the text and for its heights
                text, conf = _decode(probs, emitted, self._charset)
                alternatives = ctc_alternatives(
                    probs, emitted, self._plate_columns, self._plate_chars
                )
                results[i] = without_small_print(
                    _as_bgr(crops[i]), emitted, step_px, LineRead(text, conf, alternatives)
                )
        return results

    # ------------------------------------------------------------------ whole frame

    def read_regions(
        self, image: NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[TextRead]:
        """Every text region the models find and read, before any plate filtering;
        weak plate-like reads are read again from a zoomed-in look (see _zoom_in).
        `regions`: where to look (see detect); None, everywhere."""
        image = _as_bgr(image)
        reads = self._read_once(image, self.det_max_side, regions)
        return [self._zoom_in(image, r) for r in reads]

    def _read_once(
        self, image: NDArray[np.uint8], max_side: int, regions: Sequence[Box] | None = None
    ) -> list[TextRead]:
        polys = []
        for poly in self.detect(image, max_side, regions):
            w, h = _side_lengths(poly)
            if h >= _MIN_TEXT_HEIGHT and _MIN_TEXT_ASPECT * h <= w <= _MAX_TEXT_ASPECT * h:
                polys.append(poly)
        polys += joined_pairs(polys)
        reads = [
            _text_read(line, poly, image.shape)
            for poly, line in zip(
                polys, self.recognize([crop_polygon(image, p) for p in polys]), strict=True
            )
        ]
        # Second look, only at plate-like reads that could still be missing a character.
        again = [
            i
            for i, r in enumerate(reads)
            if reject_reason(r.raw_text) is None
            and len(normalise(r.raw_text)) < _WIDEN_SHORTER_THAN
        ]
        if again:
            wide_polys = [_widen(polys[i], _WIDEN, image.shape) for i in again]
            wide_reads = self.recognize([crop_polygon(image, p) for p in wide_polys])
            for i, poly, line in zip(again, wide_polys, wide_reads, strict=True):
                wide = _text_read(line, poly, image.shape)
                if prefer_wider(reads[i], wide):
                    reads[i] = wide
        return [r for r in reads if r.raw_text]

    def _zoom_in(self, image: NDArray[np.uint8], read: TextRead) -> TextRead:
        """A plate-like read too unsure to alert, read again from a close look.

        The region around the read (its box grown by _ZOOM_MARGIN) is enlarged so its
        text is about _ZOOM_TEXT_H px tall and detected and read afresh, at that size:
        on a small plate the frame-wide detector's box cuts off an end character or
        takes in the frame ("NTC249" for WTC249, "6LSU2163"). The closer read replaces
        the first one if it still resembles it (a look that finds other text nearby is
        ignored) and is surer, or, when the two differ in a character or two, the two are
        fused position by position (plate_text.fuse_looks). US dev: 77.8 -> 83.3% exact
        (the closer look), 86.1 -> 87.5% (fusing), EU loose unchanged, for ~15 ms per
        frame (benchmarks/RESULTS.md).

        A sure read shorter than _ZOOM_SHORTER_THAN, first or after this closer look,
        is looked at again for a lost group (_lost_group).
        """
        if reject_reason(read.raw_text) is not None:
            return read
        if _read_confidence(read) < _ZOOM_BELOW:
            read = self._closer_read(image, read)
        text = normalise(read.raw_text)
        sure = _read_confidence(read) >= _ZOOM_BELOW
        # Words without a digit (badges: "LTIMA" of ALTIMA) are not serials: not worth it.
        if sure and len(text) < _ZOOM_SHORTER_THAN and any(c.isdigit() for c in text):
            return self._lost_group(image, read)
        return read

    def _closer_read(self, image: NDArray[np.uint8], read: TextRead) -> TextRead:
        """An unsure read, read again closer (see _zoom_in)."""
        look = self._close_look(image, read.box, _ZOOM_MARGIN)
        if look is None:
            return read
        reads, origin, k = look
        first = normalise_read(read.raw_text, read.char_probs)[0]
        best: TextRead | None = None
        for again in reads:
            text = normalise_read(again.raw_text, again.char_probs)[0]
            if reject_reason(again.raw_text) is not None or len(text) < len(first) - 1:
                continue
            if SequenceMatcher(a=first, b=text, autojunk=False).ratio() < _ZOOM_SIMILAR:
                continue
            if best is None or _read_confidence(again) > _read_confidence(best):
                best = again
        if best is None:
            return read
        box = _box_in_frame(best.box, origin, k)
        surer = _read_confidence(best) > _read_confidence(read)
        fused = fuse_looks(read, best, box if surer else read.box)
        if fused is not None:
            return fused
        return TextRead(best.raw_text, best.char_probs, box, best.alternatives) if surer else read

    def _lost_group(self, image: NDArray[np.uint8], read: TextRead) -> TextRead:
        """A sure but short read, or the read it was part of. The detector can miss a
        group of a plate number that stands apart: car3's "1A MW240" was read "MW240"
        at 0.99, and the list held a plate MW240 (a false alert). A closer look with wider
        margins (_ZOOM_SHORT_MARGIN) replaces the read only with a read that extends it
        by surely read characters (plate_text.prefer_wider)."""
        for text_h in _ZOOM_SHORT_TEXT_H:
            look = self._close_look(image, read.box, _ZOOM_SHORT_MARGIN, text_h)
            if look is None:
                return read
            reads, origin, k = look
            for again in reads:
                if prefer_wider(read, again):
                    box = _box_in_frame(again.box, origin, k)
                    return TextRead(again.raw_text, again.char_probs, box, again.alternatives)
        return read

    def _close_look(
        self,
        image: NDArray[np.uint8],
        box: Box,
        margin: tuple[float, float],
        text_h: int = _ZOOM_TEXT_H,
    ) -> tuple[list[TextRead], tuple[int, int], float] | None:
        """Reads of the region around `box` (grown by `margin` x its size on each side),
        enlarged so its text is about `text_h` px tall; with the region's origin and
        the enlargement, to map their boxes back (_box_in_frame). None if the region is
        too small to read."""
        x, y, w, h = box
        mx, my = margin
        x0, y0 = max(0, int(x - mx * w)), max(0, int(y - my * h))
        x1 = min(image.shape[1], int(x + w + mx * w))
        y1 = min(image.shape[0], int(y + h + my * h))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        k = max(1.0, text_h / max(1, h))
        close = cv2.resize(image[y0:y1, x0:x1], None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
        return self._read_once(close, max(close.shape[:2])), (x0, y0), k

    def read(
        self, image: NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[PlateCandidate]:
        """Plate candidates in a BGR frame (in `regions` of it, if given), most
        plate-like first ([] if none)."""
        return choose_candidates(self.read_regions(image, regions))


def _box_in_frame(box: Box, origin: tuple[int, int], k: float) -> Box:
    """A box of a crop taken at `origin` and enlarged `k` times, in the frame's pixels."""
    bx, by, bw, bh = box
    x, y = origin
    return (x + int(bx / k), y + int(by / k), max(1, int(bw / k)), max(1, int(bh / k)))


def _cut_by_edge(poly: Polygon, region: Box, shape: tuple[int, ...]) -> bool:
    """Whether `poly` may continue past an edge of `region` that is not an edge of the
    image: it reaches the top or bottom edge, or comes within a word gap (its own height)
    of the left or right one ("CAM-12" inside, its line's clock outside)."""
    x, y, w, h = region
    rows, cols = shape[:2]
    xs, ys = poly[:, 0], poly[:, 1]
    gap = float(ys.max() - ys.min())
    return bool(
        (x > 0 and xs.min() <= x + gap)
        or (y > 0 and ys.min() <= y + _EDGE_PX)
        or (x + w < cols and xs.max() >= x + w - gap)
        or (y + h < rows and ys.max() >= y + h - _EDGE_PX)
    )


def _text_bands(polys: Sequence[Polygon], shape: tuple[int, ...]) -> list[Box]:
    """Full-width bands around the lines of `polys` (each _TEXT_BAND x its height above
    and below), overlapping bands merged."""
    rows, cols = shape[:2]
    spans = []
    for poly in polys:
        top, bottom = float(poly[:, 1].min()), float(poly[:, 1].max())
        grow = _TEXT_BAND * (bottom - top)
        spans.append((max(0, int(top - grow)), min(rows, int(bottom + grow) + 1)))
    spans.sort()
    merged: list[list[int]] = []
    for top, bottom in spans:
        if merged and top <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], bottom)
        else:
            merged.append([top, bottom])
    return [(0, top, cols, bottom - top) for top, bottom in merged]


def _centre_in(poly: Polygon, box: Box) -> bool:
    cx, cy = (float(v) for v in poly.mean(axis=0))
    x, y, w, h = box
    return x <= cx < x + w and y <= cy < y + h


def _text_read(line: LineRead, poly: Polygon, shape: tuple[int, ...]) -> TextRead:
    return TextRead(line.text, line.char_probs, _polygon_bounds(poly, shape), line.alternatives)


def _read_confidence(read: TextRead) -> float:
    """The product of every character probability of a raw read (separators included,
    unlike a candidate's confidence, which keeps only letters and digits)."""
    return math.prod(read.char_probs) if read.char_probs else 0.0


def _as_bgr(image: NDArray[np.generic]) -> NDArray[np.uint8]:
    """3-channel uint8 BGR from grey, BGRA or BGR input (the models need 3 channels)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise ValueError(f"expected an H x W (x 1/3/4) image, got shape {img.shape}")
