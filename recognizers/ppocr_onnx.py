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
from collections.abc import Sequence
from dataclasses import replace
from difflib import SequenceMatcher
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from recognizers.base import Alternatives, Box, PlateCandidate, crop_box
from recognizers.boxes import (
    Polygon,
    box_in_frame,
    box_score,
    centre_in,
    crop_polygon,
    cut_by_edge,
    joined_pairs,
    min_box,
    polygon_bounds,
    side_lengths,
    text_bands,
    unclip,
    widen,
)
from recognizers.ctc import (
    PLATE_CHARS,
    REC_H,
    ctc_alternatives,
    ctc_emissions,
    ctc_greedy,
    decode_path,
    load_charset,
    rec_tensor,
    rec_width,
)
from recognizers.det_runtime import DetPrecision, DetRuntime, load_det_runtime, ort_session
from recognizers.plate_text import (
    MAX_PLATE_LEN,
    MIN_PLATE_LEN,
    TextRead,
    choose_candidates,
    drops_end_letter,
    fuse_looks,
    normalise,
    normalise_read,
    prefer_wider,
    reject_reason,
)
from recognizers.small_print import MIN_KEPT, TAIL_LENGTHS, char_heights, small_tail
from recognizers.states import near_plate, read_state

# ctc_greedy, rec_tensor and rec_width are recognizers.ctc's, re-exported for the callers
# that take them from here (recognizers/training, benchmarks.stages).
__all__ = [
    "DET_MODEL_NAME",
    "DET_SOURCE_MODEL_NAME",
    "REC_MODEL_NAME",
    "TEXT_REC_MODEL_NAME",
    "LineRead",
    "PPOCRRecognizer",
    "ctc_greedy",
    "default_model_path",
    "rec_tensor",
    "rec_width",
]

# The detector as shipped: PP-OCRv4 det with its scalar affine and hard-swish ops folded
# (tools/graph_folding.py; same output, ~13% less detection time). The export it is folded
# from ships beside it.
DET_MODEL_NAME = "ch_PP-OCRv4_det_folded.onnx"
DET_SOURCE_MODEL_NAME = "ch_PP-OCRv4_det_infer.onnx"
# The plate reader: PP-OCRv6 small recognition fine-tuned on real plates, its classifier
# cut to A-Z0-9 (recognizers/training, recognizers/models/MODEL_CARD.md). The general
# text recogniser it was trained from (in the rapidocr wheel) is what older model folders
# hold, and still loads.
REC_MODEL_NAME = "plate_rec.onnx"
TEXT_REC_MODEL_NAME = "PP-OCRv6_rec_small.onnx"

# (x/255 - 0.5) / 0.5 on BGR, as RapidOCR feeds PP-OCR det (its v4 and v6 configs alike).
# PaddleOCR's usual ImageNet mean/std read fewer plates with v6 det: US dev photos 63.9%
# exact vs 69.4%, synthetic 98 vs 100 of 100; RGB order: 68.1%.
_DET_MEAN = np.full(3, 127.5, np.float32)
_DET_STD = np.full(3, 127.5, np.float32)
_DET_THRESH = 0.3  # pixel is text if p > this
_DET_MAX_UPSCALE = 3.0
_DET_UPSCALE_TO = 960
_BOX_THRESH = 0.5  # a region is text if its mean p >= this
# A frame's parts (motion regions, close looks) come in every size, and OpenVINO compiles
# the detector for each input shape it meets (~5 MB each, kept up to
# det_runtime.SHAPE_CACHE shapes). Parts are padded to multiples of this so most meet a
# shape already compiled; a camera's whole frame keeps multiples of 32 (one shape per
# resolution). 96 moved a far plate's box 5 px from the whole frame's; 64 keeps it in 3.
_PART_GRID = 64
_FRAME_GRID = 32  # the network's own stride: the least padding a whole frame can have
_UNCLIP_RATIO = 1.5  # DB's expansion: offset = area * ratio / perimeter
_MIN_SIDE = 3  # px at detector scale; smaller regions are specks
_MAX_CANDIDATES = 200

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
# Plate-region look (PPOCRRecognizer._plate_region_reads): a plate-like line read again
# from its box grown by (x, y) x its size on each side (a US serial is about 80% of its
# plate's width and 45% of its height); the whole read wins if at most this much less sure.
_REGION_READ = True
_REGION_GROW = (0.12, 0.6)
_REGION_MARGIN = 0.0
_ZOOM_SHORT_MARGIN = (0.8, 0.8)
_ZOOM_SHORT_TEXT_H = (56, 72)


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
    resized = cv2.resize(crop, (rec_width(crop), REC_H), interpolation=cv2.INTER_LINEAR)
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
        text_rec_model: Path | None = None,
    ) -> None:
        """`text_rec_model`: a general text recogniser that reads the state names and
        slogans around a plate (the plate reader, trained on serials, reads them less
        well); None reads them with the plate reader."""
        if det_max_side < 32:
            raise ValueError("det_max_side must be >= 32")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.det_max_side = int(det_max_side)
        det_path = Path(det_model or default_model_path(DET_MODEL_NAME))
        self._det = load_det_runtime(det_path, det_runtime, threads, det_precision)
        self._rec = ort_session(Path(rec_model or default_model_path(REC_MODEL_NAME)), threads)
        self._rec_input = self._rec.get_inputs()[0].name
        self._charset = load_charset(self._rec)
        plate_columns = [i for i, c in enumerate(self._charset) if c in PLATE_CHARS]
        self._plate_columns = np.array(plate_columns, np.intp)
        self._plate_chars = [self._charset[i] for i in plate_columns]
        self._text_rec = None if text_rec_model is None else ort_session(text_rec_model, threads)
        self._text_charset = [] if self._text_rec is None else load_charset(self._text_rec)
        self._text_input = "" if self._text_rec is None else self._text_rec.get_inputs()[0].name

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
        self, image: NDArray[np.uint8], max_side: int, scale: float | None = None,
        grid: int = _FRAME_GRID,
    ) -> tuple[NDArray[np.float32], float]:
        """Normalised NCHW tensor, padded to multiples of `grid`, and the scale from the
        image to it (`scale`, or the one _det_scale gives for this image)."""
        h, w = image.shape[:2]
        if scale is None:
            scale = self._det_scale(image.shape, max_side)
        rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
        if scale == 1:
            resized = image
        else:
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(image, (rw, rh), interpolation=interpolation)
        # Pad (not stretch) to multiples of the grid (the network needs 32): the aspect
        # ratio, and so the letter shapes, stay as the camera saw them, and box
        # coordinates map back by one scale.
        ph, pw = -(-rh // grid) * grid, -(-rw // grid) * grid
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
        *,
        part: bool = False,
    ) -> list[Polygon]:
        """Text regions of a BGR image: 4-corner polygons in image pixels, ordered
        top-left, top-right, bottom-right, bottom-left. `max_side` caps the detector's
        input (default: det_max_side); the image's own long side means "as it is".

        `regions` (x, y, w, h boxes, not overlapping) limits detection to those parts of
        the image, each seen at the scale the whole image would be seen at: the same
        text is found in them, for a share of the time (flows/frame_filter.py finds
        where a frame moved). None means the whole image. Text a region's edge cuts
        (a clock whose seconds changed, "44:10 CAM-1" of a longer overlay line) is
        detected again in a band the image's width across its line (TEXT_BAND), so it
        is read whole, as it would be in the whole image.

        `part`: the image is a part of a frame (a close look), padded like regions to the
        coarser _PART_GRID.
        """
        image = _as_bgr(image)
        if image.shape[0] < 4 or image.shape[1] < 4:
            return []
        max_side = max_side or self.det_max_side
        if regions is None:
            polys = self._detect_in(image, max_side, None, _PART_GRID if part else _FRAME_GRID)
        else:
            scale = self._det_scale(image.shape, max_side)
            polys, cut = [], []
            for region in regions:
                for poly in self._detect_at(image, region, max_side, scale):
                    polys.append(poly)
                    if cut_by_edge(poly, region, image.shape):
                        cut.append(poly)
            if cut:
                bands = text_bands(cut, image.shape)
                polys = [p for p in polys if not any(centre_in(p, b) for b in bands)]
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
        polys = self._detect_in(part, max_side, scale, _PART_GRID)
        for poly in polys:
            poly[:, 0] += x0
            poly[:, 1] += y0
        return polys

    def _detect_in(
        self, image: NDArray[np.uint8], max_side: int, scale: float | None, grid: int
    ) -> list[Polygon]:
        tensor, scale = self._det_prepare(image, max_side, scale, grid)
        prob = self._det(tensor)[0, 0]
        bitmap = (prob > _DET_THRESH).astype(np.uint8)
        # PaddleOCR dilates by 2x2 so thin strokes still join into one region.
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        polys: list[Polygon] = []
        for contour in contours[:_MAX_CANDIDATES]:
            corners, short = min_box(contour.reshape(-1, 2).astype(np.float32))
            if short < _MIN_SIDE or box_score(prob, corners) < _BOX_THRESH:
                continue
            grown = unclip(corners, _UNCLIP_RATIO)
            if grown is None:
                continue
            corners, short = min_box(grown)
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
                text, conf = decode_path(probs, emitted, self._charset)
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
        reads = [self._zoom_in(image, r) for r in reads]
        return self._plate_region_reads(image, reads) if _REGION_READ else reads

    def _state_lines(
        self, image: NDArray[np.uint8], reads: Sequence[TextRead],
        candidates: Sequence[PlateCandidate],
    ) -> list[tuple[str, float, Box]]:
        """(text, confidence, box) of the lines that may name a plate's state: every read,
        and the ones on a candidate's plate read again by the general text recogniser.
        Both reads of a line count: each reader misreads some names the other reads (the
        general one read Utah's "UTAH" as "IITAH", the plate reader "ITAH"). US crops
        train split: state right 90.5 -> 91.4%, wrong 1.2 -> 0.8% (benchmarks/RESULTS.md)."""
        lines = [(normalise(r.raw_text), _read_confidence(r), r.box) for r in reads]
        if self._text_rec is None:
            return lines
        near = [i for i, r in enumerate(reads)
                if any(r.box != c.box and near_plate(c.box, r.box) for c in candidates)]
        if not near:
            return lines
        for i in near:
            crop = crop_box(image, reads[i].box)
            if crop.size == 0:
                continue
            probs = self._text_rec.run(None, {self._text_input: rec_tensor([crop])})[0][0]
            text, char_probs = ctc_greedy(probs, self._text_charset)
            lines.append((normalise(text), math.prod(char_probs) if char_probs else 0.0,
                          reads[i].box))
        return lines

    def _plate_region_reads(
        self, image: NDArray[np.uint8], reads: list[TextRead]
    ) -> list[TextRead]:
        """Plate-like reads read again from the plate around them, as a whole.

        The plate reader was trained on whole plates (recognizers/training): around a
        serial's text line it sees the plate as it learned it (the serial's full extent,
        the state name, the frame), where the detector's line can stop short of an end
        character. The line's box, grown to the plate's proportions, is read; the whole
        read replaces the line's when it is as sure (the box stays the line's)."""
        picked = [i for i, r in enumerate(reads)
                  if reject_reason(r.raw_text) is None
                  and MIN_PLATE_LEN <= len(normalise(r.raw_text)) <= MAX_PLATE_LEN]
        if not picked:
            return reads
        crops = [_plate_region(image, reads[i].box) for i in picked]
        out = list(reads)
        for i, line in zip(picked, self.recognize(crops), strict=True):
            whole = TextRead(line.text, line.char_probs, reads[i].box, line.alternatives)
            text = normalise(whole.raw_text)
            if (reject_reason(whole.raw_text) is None
                    and MIN_PLATE_LEN <= len(text) <= MAX_PLATE_LEN
                    and _read_confidence(whole) >= _read_confidence(reads[i]) - _REGION_MARGIN
                    # nor drop an end letter the line read surely enough (BR: INC8808)
                    and not drops_end_letter(reads[i], whole)):
                out[i] = whole
        return out

    def _read_once(
        self, image: NDArray[np.uint8], max_side: int, regions: Sequence[Box] | None = None,
        *, part: bool = False,
    ) -> list[TextRead]:
        polys = []
        for poly in self.detect(image, max_side, regions, part=part):
            w, h = side_lengths(poly)
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
            wide_polys = [widen(polys[i], _WIDEN, image.shape) for i in again]
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
        if best is None or drops_end_letter(read, best):
            return read
        box = box_in_frame(best.box, origin, k)
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
                    box = box_in_frame(again.box, origin, k)
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
        the enlargement, to map their boxes back (box_in_frame). None if the region is
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
        return self._read_once(close, max(close.shape[:2]), part=True), (x0, y0), k

    def read(
        self, image: NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[PlateCandidate]:
        """Plate candidates in a BGR frame (in `regions` of it, if given), most
        plate-like first ([] if none), each with the state its plate's text names (if a
        line on the plate names one)."""
        reads = self.read_regions(image, regions)
        candidates = choose_candidates(reads)
        if not candidates:
            return []
        lines = self._state_lines(_as_bgr(image), reads, candidates)
        out = []
        for candidate in candidates:
            found = read_state(candidate.box, lines)
            out.append(candidate if found is None else replace(
                candidate, state=found.state, state_confidence=found.confidence))
        return out


def _plate_region(image: NDArray[np.uint8], box: Box) -> NDArray[np.uint8]:
    """The plate around a serial's line box: grown by _REGION_GROW (x, y) x its size on
    each side, within the image."""
    x, y, w, h = box
    gx, gy = _REGION_GROW
    x0, y0 = max(0, round(x - gx * w)), max(0, round(y - gy * h))
    x1 = min(image.shape[1], round(x + w + gx * w))
    y1 = min(image.shape[0], round(y + h + gy * h))
    return image[y0:y1, x0:x1]


def _text_read(line: LineRead, poly: Polygon, shape: tuple[int, ...]) -> TextRead:
    return TextRead(line.text, line.char_probs, polygon_bounds(poly, shape), line.alternatives)


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
