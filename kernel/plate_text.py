"""Plate text shared by reading, matching and the simulator: the one normal form, and the
OCR look-alike classes that reading's confidence and the hotlist keys both depend on."""

from __future__ import annotations

import re

__all__ = ["EQUIVALENCE_CLASSES", "canonical", "normalise_plate"]

# Characters a plate OCR confuses with each other (measured failure modes of PP-OCR on
# US plates, and the classes Genetec/Frigate use). The first of each class is its
# representative. Changing this changes every stored key: re-import every source after.
EQUIVALENCE_CLASSES: tuple[str, ...] = ("0ODQ", "1IL", "8B", "5S", "2Z", "6G", "4A")

_CANON = str.maketrans({ch: cls[0] for cls in EQUIVALENCE_CLASSES for ch in cls[1:]})
_NOT_PLATE = re.compile(r"[^A-Z0-9]")


def normalise_plate(text: str) -> str:
    """Upper case, keep ASCII A-Z and 0-9 only ("ab-123 c" -> "AB123C"): the form OCR text,
    hotlist entries and the simulator's ground truth are all compared in."""
    return _NOT_PLATE.sub("", text.upper())


def canonical(plate: str) -> str:
    """Each character replaced by its equivalence-class representative
    ("B0SS" and "8OS5" both give "8055"). `plate` must already be normalised."""
    return plate.translate(_CANON)
