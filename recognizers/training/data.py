"""Labelled real plates for training and measuring the plate reader.

A labelled folder holds NAME.png/.jpg with NAME.txt beside it: one tab-separated line
`NAME.ext x y width height PLATE [STATE]` (the ../shared/data format; for a crop the box
is the whole image). Every folder is split by plate text, never by image: one plate's
photos all land on the same side, so no figure is measured on a plate the model has seen.

Some labels are wrong (the Brazilian crops' text came from their source's file names, and
every one of its 65 "Mercosul" labels sits on an old grey plate with four digits).
`errata/FOLDER.tsv` corrects what a person could read in the image; a correction applies
only while the folder still gives the label it corrects, and the split follows the
corrected plate (one plate, one side).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")

ERRATA_DIR = Path(__file__).with_name("errata")

# Percent of plates per split (train, val, test), by a stable hash of the plate text.
DEFAULT_SHARES = (70, 15, 15)


@dataclass(frozen=True)
class LabelledPlate:
    """One labelled image: where it is, the plate's box in it, its text and state."""

    path: Path
    box: tuple[int, int, int, int]
    plate: str  # as corrected by the folder's errata, where one applies
    state: str  # two-letter issuing state, "" where the label has none
    given: str  # the plate as the label file writes it

    @property
    def corrected(self) -> bool:
        """Whether an erratum corrected this label."""
        return self.plate != self.given

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


@dataclass(frozen=True)
class Erratum:
    """A label corrected after looking at its image."""

    image: str
    given: str
    corrected: str
    why: str


def read_errata(path: Path) -> dict[str, Erratum]:
    """Image name -> its correction, from a tab-separated file with the header
    `image given corrected why`. A malformed line is an error naming its line."""
    out: dict[str, Erratum] = {}
    lines = path.read_text().splitlines()
    if not lines or lines[0].split("\t") != ["image", "given", "corrected", "why"]:
        raise ValueError(f"{path}: the first line must be: image, given, corrected, why")
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 4 or not all(f.strip() for f in fields):
            raise ValueError(f"{path}:{n}: expected 4 non-empty tab-separated fields")
        image, given, corrected, why = (f.strip() for f in fields)
        if not (given.isalnum() and corrected.isalnum()):
            raise ValueError(f"{path}:{n}: plates are letters and digits only")
        if image in out:
            raise ValueError(f"{path}:{n}: {image} is corrected twice")
        out[image] = Erratum(image, given.upper(), corrected.upper(), why)
    return out


def errata_for(folder: Path) -> dict[str, Erratum]:
    """The corrections kept for a labelled folder (by its name); none if there is no file."""
    path = ERRATA_DIR / f"{folder.name}.tsv"
    return read_errata(path) if path.is_file() else {}


def read_folder(folder: Path, errata: bool = True) -> list[LabelledPlate]:
    """Every labelled image of a folder, sorted by name, with the folder's errata applied
    (`errata=False`: the labels as given). A label line that does not parse is an error
    naming the file (a silently skipped label would skew figures)."""
    corrections = errata_for(folder) if errata else {}
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
        fix = corrections.get(image.name)
        # Not once the source is corrected: the erratum must name the label it corrects.
        given = plate
        if fix is not None and fix.given == given:
            plate = fix.corrected
        out.append(LabelledPlate(image, box, plate, state, given))  # type: ignore[arg-type]
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
