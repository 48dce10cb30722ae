"""A read's confidence up to look-alike characters, which is what an alert depends on.

Hotlist matching treats each OCR look-alike class (0/O/D/Q, 1/I/L, 8/B, 5/S, 2/Z, 6/G,
4/A: kernel.plate_text.EQUIVALENCE_CLASSES) as one character, on every list. So whether a
read finds the right hotlist entries depends on each character's class, not on which
member of it the model preferred: California's 6HP995 read with the 6 at 0.59 and a G
at ~0.4 is a sure read of "6-or-G HP995", and matches the same entries as 6HP995 would.

Each character's confidence becomes the probability of its class (the read character's
own plus its class-mates' among the model's alternatives), and the plate's the product.
US dev, 72 photos: at the 0.80 alert threshold 65 images read instead of 60, 63 of them
right instead of 58 (precision 96.9% against 96.7%; benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from dataclasses import replace

from kernel.plate_text import canonical
from recognizers.base import PlateCandidate

__all__ = ["lookalike_confidence"]


def lookalike_confidence(candidate: PlateCandidate) -> PlateCandidate:
    """`candidate` with each character's confidence raised to its look-alike class's
    probability, capped at 1; unchanged without alternatives (the PaddleOCR backend)."""
    if not candidate.char_alternatives:
        return candidate
    confidences = tuple(
        min(1.0, p + sum(q for c, q in alts if c != char and canonical(c) == canonical(char)))
        for char, p, alts in zip(
            candidate.text, candidate.char_confidences, candidate.char_alternatives, strict=True
        )
    )
    return replace(candidate, char_confidences=confidences, confidence=math.prod(confidences))
