"""The Colorado CCIC extract: fixed-width plate, state, category text, vehicle text; one
file replaces the whole CCIC list.

Columns (0-based, end exclusive), as the open-source openalpr hotlist importer reads them:

    0-10    plate, space padded
    10-12   state
    12-34   category text ("Stolen Plate", "Felony Warrant"; long names truncated)
    34-     vehicle description

    ABC123    COAttempt To Locate     2002 FORD FOC BLK

A header is told by its content: a first line that starts with CCIC or names the PLATE
and STATE columns, and holds no known category in columns 12-34 (anything parses as
plate and state, so the category is what marks a record); any other malformed first line
is rejected like the rest.

The extract carries no record id: an entry's id is a hash of plate, state and category,
stable across drops. A category this module does not know is kept (priority 3) and
counted in stats.unknown_categories; immigration-related ones are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hotlists.categories import (
    agency_category,
    ccic_category,
    immigration_refusal,
    with_vehicle,
)
from hotlists.importers.base import (
    HeaderRule,
    ImportStats,
    RowInvalid,
    RowRefused,
    guard_rows,
    header_marked,
    parse_plate,
    parse_state,
)
from kernel.contracts import HotlistEntry, HotlistSource, stable_id

__all__ = ["ENCODING", "format_record", "parse_ccic"]

ENCODING = "latin-1"
_MIN_LENGTH = 13  # plate, state and at least one category character


def parse_ccic(lines: Iterable[str], stats: ImportStats) -> Iterator[HotlistEntry]:
    """CCIC entries of an extract's lines; rejections and refusals go to `stats`."""

    def parse_line(line_no: int, raw: str) -> HotlistEntry:
        if len(raw) < _MIN_LENGTH:
            raise RowInvalid(
                "short_line", f"{len(raw)} characters; a record has at least {_MIN_LENGTH}"
            )
        plate = parse_plate(raw[0:10])
        state = parse_state(raw[10:12], required=True)
        text = " ".join(raw[12:34].split())
        if not text:
            raise RowInvalid("missing_category", "no category text in columns 12-34")
        if immigration_refusal(text) is not None:
            raise RowRefused("immigration")
        category = ccic_category(text)
        if category is None:
            category = agency_category(text)
            stats.unknown_categories[text] += 1
        reason = with_vehicle(category.label, " ".join(raw[34:].split()))
        return HotlistEntry(
            plate=plate,
            state=state,
            source=HotlistSource.CCIC,
            reason=reason,
            entry_id="CCIC-" + stable_id("ccic", plate, state, text.casefold())[:16],
            priority=category.priority,
            category=category.slug,
        )

    return guard_rows(lines, stats, parse_line, header=_HEADER)


def _is_header(raw: str) -> bool:
    return header_marked(raw, "CCIC") and ccic_category(raw[12:34]) is None


_HEADER = HeaderRule(
    _is_header,
    "a header starts with CCIC or names the PLATE and STATE columns, and has no category",
)


def format_record(plate: str, state: str, category: str, vehicle: str = "") -> str:
    """One extract line (for tests and fixtures)."""
    return f"{plate:10.10}{state:2.2}{category:22.22}{vehicle}"
