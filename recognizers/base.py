"""What every plate recogniser returns, and the interface the flow calls.

The flow only needs `Recognizer.read(image)`: a frame in, plate candidates out, best first.
Backends (PP-OCR on ONNX here, PaddleOCR later) differ only in how they get there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Alternatives", "Box", "PlateCandidate", "Recognizer", "boxes_overlap", "crop_box"]

Box = tuple[int, int, int, int]  # x, y, w, h in pixels of the original image
# Per character of a read: (character, probability) pairs, likeliest first.
Alternatives = tuple[tuple[tuple[str, float], ...], ...]


def boxes_overlap(a: Box, b: Box) -> bool:
    """Whether two (x, y, w, h) boxes share any area (touching edges do not)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def crop_box(image: NDArray[np.uint8], box: Box, pad: float = 0.0) -> NDArray[np.uint8]:
    """The pixels of `box` (x, y, w, h), grown by `pad` x its height on each side.

    Clipped to the image, so it may be smaller than asked for, and empty (0 rows or
    columns) when the box lies outside the image. Returns a view, not a copy.
    """
    x, y, w, h = box
    grow = round(pad * h)
    x0, y0 = max(0, x - grow), max(0, y - grow)
    x1 = min(image.shape[1], x + w + grow)
    y1 = min(image.shape[0], y + h + grow)
    return image[y0 : max(y0, y1), x0 : max(x0, x1)]


@dataclass(frozen=True)
class PlateCandidate:
    """One plate read from one frame.

    text: the plate as A-Z0-9 only (separators, spaces and lower case removed).
    confidence: an estimate of the probability that the whole text is right: the product
        of the per-character confidences (each character must be right, and errors are
        roughly independent per character), so a long plate with one shaky character
        scores low. 0..1.
    char_confidences: one per character of `text`: the recogniser's probability for that
        character (for CTC, the highest softmax over the time steps that emitted it);
        in the flow, its look-alike class's (recognizers/lookalike_confidence.py).
    box: where the text was found, (x, y, w, h) in pixels of the ORIGINAL image (the
        axis-aligned bounds of the detected text region).
    raw_text: what the model read before normalising and filtering (for debugging and
        for auditing a read: e.g. "ABC-1234" or "abc 1234").
    char_alternatives: per character of `text`, the recogniser's likeliest letters and
        digits there with their probabilities, likeliest first; empty when the recogniser
        gives none (the PaddleOCR backend). Used to fit a read to a serial format
        (recognizers/serial_formats.py).
    state, state_confidence: the US state named by the text printed on the plate around
        the serial (its name or a slogan only it uses), and how sure that is.
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    box: Box
    raw_text: str
    char_alternatives: Alternatives = ()
    state: str = ""  # two-letter issuing state read from the plate's own text, "" if none
    state_confidence: float = 0.0  # 0..1 (recognizers/states.py)

    def __post_init__(self) -> None:
        if len(self.char_confidences) != len(self.text):
            raise ValueError("char_confidences needs exactly one value per character of text")
        if self.char_alternatives and len(self.char_alternatives) != len(self.text):
            raise ValueError("char_alternatives needs none or one entry per character of text")

    def crop(self, image: NDArray[np.uint8], pad: float = 0.0) -> NDArray[np.uint8]:
        """The plate text pixels of `image` (the frame this candidate was read from)."""
        return crop_box(image, self.box, pad)


@runtime_checkable
class Recognizer(Protocol):
    """A plate reader: one BGR frame (H x W x 3 uint8) in, candidates out.

    Best candidate first; an empty list when the frame holds no plate-like text.
    Implementations must not raise on blank, tiny or single-colour frames.
    `regions` (x, y, w, h boxes) says where in the frame a new plate can be (where it
    moved); a reader may look only there, or everywhere. None: everywhere.
    """

    def read(
        self, image: NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[PlateCandidate]: ...
