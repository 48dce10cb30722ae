"""Importers of the hotlist formats, by the name the CLI uses (`--source`).

Each format says which source it feeds, how its files are decoded, and whether a file
replaces the whole source (twice-daily extracts) or adds single urgent entries (Amber
alerts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from typing import Literal

from hotlists.importers import agency_csv, ccic, ncic, ncmec
from hotlists.importers.base import ImportStats, Rejection
from kernel.contracts import HotlistEntry, HotlistSource

__all__ = ["FORMATS", "Format", "ImportStats", "Rejection", "get_format"]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    source: HotlistSource
    mode: Literal["replace", "upsert"]
    encoding: str
    parse: Callable[[Iterable[str], ImportStats, tzinfo], Iterator[HotlistEntry]]
    description: str


FORMATS: dict[str, Format] = {
    "ncic": Format(
        "ncic", HotlistSource.NCIC, "replace", ncic.ENCODING,
        lambda lines, stats, tz: ncic.parse_ncic(lines, stats),
        "NCIC LPR extract (fixed width), replaces the NCIC list",
    ),
    "ccic": Format(
        "ccic", HotlistSource.CCIC, "replace", ccic.ENCODING,
        lambda lines, stats, tz: ccic.parse_ccic(lines, stats),
        "Colorado CCIC extract (fixed width), replaces the CCIC list",
    ),
    "ncmec": Format(
        "ncmec", HotlistSource.NCMEC, "upsert", ncmec.ENCODING,
        lambda lines, stats, tz: ncmec.parse_ncmec(lines, stats),
        "NCMEC Amber alerts (JSON), added or cancelled one by one",
    ),
    "csv": Format(
        "csv", HotlistSource.LOCAL, "replace", agency_csv.ENCODING,
        lambda lines, stats, tz: agency_csv.parse_agency_csv(lines, stats, tz=tz),
        "agency list (PlateNumber, PlateState, Category, EffectiveDate, ExpiryDate), "
        "replaces the LOCAL list",
    ),
}  # fmt: skip


def get_format(name: str) -> Format:
    try:
        return FORMATS[name.casefold()]
    except KeyError:
        raise ValueError(
            f"unknown hotlist format {name!r} (one of {', '.join(FORMATS)})"
        ) from None
