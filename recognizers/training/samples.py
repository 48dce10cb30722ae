"""What the plate reader trains on: real plates, whole and as the detector cuts them.

At run time the reader sees the detector's text lines (in scenes) and whole plates (a
crop, or the plate region around a serial's line). Each labelled image gives both: the
plate's labelled box (a crop's whole image), and the detector's line whose read is
closest to the label (the serial).
Lines are found once with the shipped models and cached, so a re-run does not detect
again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from recognizers.boxes import crop_polygon, joined_pairs
from recognizers.plate_text import normalise
from recognizers.ppocr_onnx import PPOCRRecognizer
from recognizers.training.data import LabelledPlate, Split, split_of

Kind = Literal["whole", "line"]
# A detector line counts as the plate's serial if its read is this similar to the label
# (a line that holds only part of the serial would teach the reader to invent the rest).
_LINE_MATCH = 0.7


@dataclass(frozen=True)
class Sample:
    """A labelled region of an image: the whole crop, or the serial's detector line.
    Training cuts it with its corners jittered (augment.py); measuring cuts it as is."""

    image: NDArray[np.uint8]  # BGR, the whole labelled image
    poly: NDArray[np.float32]  # 4 corners: top-left, top-right, bottom-right, bottom-left
    label: str
    kind: Kind
    source: str  # the folder's name
    split: Split
    name: str


Line = dict[str, Any]  # {"poly": 4 corners, "read": the shipped reader's text}


def _lines(recognizer: PPOCRRecognizer, image: NDArray[np.uint8]) -> list[Line]:
    """Every detector line of the image (and joined neighbours) with its read."""
    polys = recognizer.detect(image)
    polys = polys + joined_pairs(polys)
    if not polys:
        return []
    reads = recognizer.recognize([crop_polygon(image, p) for p in polys])
    return [{"poly": p.tolist(), "read": normalise(r.text)}
            for p, r in zip(polys, reads, strict=True)]


def detector_lines(
    plates: Sequence[LabelledPlate], cache: Path, progress: Callable[[int, int], None]
) -> dict[str, list[Line]]:
    """Per image name, its detector lines (cached in `cache`, a JSON file)."""
    found: dict[str, list[Line]] = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = [p for p in plates if p.name not in found]
    if todo:
        recognizer = PPOCRRecognizer(threads=2)
        for i, p in enumerate(todo):
            image = cv2.imread(str(p.path), cv2.IMREAD_COLOR)
            found[p.name] = [] if image is None else _lines(recognizer, image)
            if i % 250 == 249 or i == len(todo) - 1:
                progress(i + 1, len(todo))
                cache.write_text(json.dumps(found))
    return found


def serial_line(lines: Sequence[Line], label: str) -> NDArray[np.float32] | None:
    """The corners of the line holding the serial; None if no line reads close to it."""
    if not lines:
        return None
    ratio, best = max((SequenceMatcher(None, ln["read"], label).ratio(), i)
                      for i, ln in enumerate(lines))
    return np.array(lines[best]["poly"], np.float32) if ratio >= _LINE_MATCH else None


def load_samples(
    plates: Sequence[LabelledPlate], source: str, lines: dict[str, list[Line]],
) -> Iterator[Sample]:
    """The whole crop of each plate, and its serial line where the detector found one."""
    for p in plates:
        image = cv2.imread(str(p.path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{p.path}: not a readable image")
        split = split_of(p.plate)
        # The label's plate box: the whole image for a crop, the plate in a scene photo.
        x, y, w, h = p.box
        whole = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
        yield Sample(image, whole, p.plate, "whole", source, split, p.name)
        serial = serial_line(lines.get(p.name, []), p.plate)
        if serial is not None:
            yield Sample(image, serial, p.plate, "line", source, split, p.name)


def cut(sample: Sample) -> NDArray[np.uint8]:
    """The sample's region as the reader sees it at run time, no jitter."""
    return crop_polygon(sample.image, sample.poly)
