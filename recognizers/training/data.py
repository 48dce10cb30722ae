"""Labelled real plates for training and measuring the plate reader.

A labelled folder holds NAME.png/.jpg with NAME.txt beside it: one tab-separated line
`NAME.ext x y width height PLATE [STATE]` (the ../shared/data format; for a crop the box
is the whole image). Every folder is split by plate text, never by image: one plate's
photos all land on the same side, so no figure is measured on a plate the model has seen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")

# Percent of plates per split (train, val, test), by a stable hash of the plate text.
DEFAULT_SHARES = (70, 15, 15)


@dataclass(frozen=True)
class LabelledPlate:
    """One labelled image: where it is, the plate's box in it, its text and state."""

    path: Path
    box: tuple[int, int, int, int]
    plate: str
    state: str  # two-letter issuing state, "" where the label has none

    @property
    def name(self) -> str:
        return self.path.name


def split_of(plate: str, shares: Sequence[int] = DEFAULT_SHARES) -> Split:
    """The split a plate belongs to: the same for every image of it, on every machine."""
    if len(shares) != 3 or sum(shares) != 100 or min(shares) < 0:
        raise ValueError(f"shares must be three percentages adding up to 100, got {shares}")
    bucket = int(hashlib.sha256(plate.encode()).hexdigest()[:8], 16) % 100
    if bucket < shares[0]:
        return "train"
    return "val" if bucket < shares[0] + shares[1] else "test"


def read_folder(folder: Path) -> list[LabelledPlate]:
    """Every labelled image of a folder, sorted by name. A label line that does not
    parse is an error naming the file (a silently skipped label would skew figures)."""
    out = []
    for txt in sorted(folder.glob("*.txt")):
        fields = txt.read_text().strip().split("\t")
        if len(fields) < 6:
            raise ValueError(f"{txt}: expected at least 6 tab-separated fields")
        image = folder / fields[0]
        if not image.is_file():
            raise FileNotFoundError(f"{txt} names {image}, which is missing")
        try:
            box = tuple(int(v) for v in fields[1:5])
        except ValueError as exc:
            raise ValueError(f"{txt}: the box is not four whole numbers") from exc
        plate = fields[5].strip().upper()
        if not plate.isalnum():
            raise ValueError(f"{txt}: plate {plate!r} is not letters and digits only")
        state = fields[6].strip().upper() if len(fields) > 6 else ""
        out.append(LabelledPlate(image, box, plate, state))  # type: ignore[arg-type]
    if not out:
        raise FileNotFoundError(f"no NAME.txt labels in {folder}")
    return out


def by_split(
    plates: Iterable[LabelledPlate], shares: Sequence[int] = DEFAULT_SHARES
) -> dict[Split, list[LabelledPlate]]:
    """The plates of each split."""
    out: dict[Split, list[LabelledPlate]] = {s: [] for s in SPLITS}
    for p in plates:
        out[split_of(p.plate, shares)].append(p)
    return out
