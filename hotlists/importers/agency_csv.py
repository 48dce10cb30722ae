"""Agency hotlists as delimited text, in the style of Genetec AutoVu lists: one file
replaces the agency (LOCAL) list.

Columns: PlateNumber (required), PlateState, Category (the reason), EffectiveDate,
ExpiryDate. The delimiter is detected (`;` `,` tab or `:`). With a header (a line naming
PlateNumber) columns are found by name, case- and space-insensitively, and in any order;
without one they are taken in the order above. Other named columns (notes, vehicle) are
ignored; a row with more fields than the header is malformed. A header naming one of the
columns twice, or holding bytes that are not UTF-8, is rejected and so is every row
after it: which field holds the plate cannot be known. A row with bytes that are not
UTF-8 is rejected (bad_encoding).

Dates: YYYY-MM-DD, YYYYMMDD, MM/DD/YYYY, ISO date-time or epoch ms, in `tz` (UTC by
default). An expiry date means the entry lives through that day; before its effective
date an entry is stored but never matches. Entries have no id in these files: the id is a
hash of plate, state and category, so the same row keeps its id from one drop to the next.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, tzinfo
from itertools import chain, islice

from hotlists.categories import agency_category, immigration_refusal
from hotlists.importers.base import (
    ImportStats,
    RowInvalid,
    RowRefused,
    guard_rows,
    is_utf8,
    parse_date_ms,
    parse_plate,
    parse_state,
)
from kernel.contracts import HotlistEntry, HotlistSource, stable_id

__all__ = ["COLUMNS", "DELIMITERS", "ENCODING", "detect_delimiter", "parse_agency_csv"]

ENCODING = "utf-8-sig"
COLUMNS = ("platenumber", "platestate", "category", "effectivedate", "expirydate")
# In order of preference when several split the sample equally well (':' last: it also
# appears inside date-times).
DELIMITERS = ("\t", ";", ",", ":")
_SAMPLE_LINES = 20


def detect_delimiter(sample: list[str]) -> str:
    """The delimiter of a file from its first non-blank lines.

    A line naming PlateNumber decides alone (the delimiter that isolates that name);
    otherwise the one that splits the most lines into the same number (>= 2) of fields.
    """
    for line in sample:
        for delim in DELIMITERS:
            if "platenumber" in (_key(c) for c in _split(line, delim)):
                return delim
    best, best_score = ",", 0
    for delim in DELIMITERS:
        counts = [len(_split(line, delim)) for line in sample]
        if not counts:
            continue
        common = max(set(counts), key=counts.count)
        score = counts.count(common) if common >= 2 else 0
        if score > best_score:
            best, best_score = delim, score
    return best


def parse_agency_csv(
    lines: Iterable[str], stats: ImportStats, *, tz: tzinfo = UTC
) -> Iterator[HotlistEntry]:
    """Agency list entries; rejections and refusals go to `stats`."""
    it = iter(lines)
    head = list(islice(it, _SAMPLE_LINES))
    sample = [ln.rstrip("\r\n").removeprefix("\ufeff") for ln in head if ln.strip()]
    delim = detect_delimiter(sample)
    # None once the header proved unusable: no row can then be read.
    columns: dict[str, int] | None = {name: i for i, name in enumerate(COLUMNS)}
    width = len(COLUMNS)  # fields a row may have: the header's (extra columns ignored)
    seen: dict[str, int] = {}
    header_done = False
    bad_header_line = 0

    def parse_line(line_no: int, raw: str) -> HotlistEntry | None:
        nonlocal columns, header_done, width, bad_header_line
        cells = _cells(raw.removeprefix("\ufeff"), delim)
        if not header_done:
            header_done = True
            keys = [_key(c) for c in cells]
            if "platenumber" in keys:
                problem = _header_problem(raw, keys)
                if problem:
                    columns, bad_header_line = None, line_no
                    raise RowInvalid("bad_header", problem)
                columns = {k: i for i, k in enumerate(keys) if k in COLUMNS}
                width = len(keys)
                stats.header = raw
                return None
        if columns is None:
            raise RowInvalid("bad_header", f"no usable header (line {bad_header_line})")
        if not is_utf8(raw):  # a lone surrogate would fail the store write (see is_utf8)
            raise RowInvalid("bad_encoding", "not valid UTF-8 (undecodable bytes)")
        cols = columns  # narrowed, for the closure below

        def cell(name: str) -> str:
            i = cols.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        if len(cells) > width:
            raise RowInvalid("bad_field_count", f"{len(cells)} fields; expected at most {width}")
        plate = parse_plate(cell("platenumber"))
        state = parse_state(cell("platestate"))
        text = " ".join(cell("category").split())
        effective = _date(cell("effectivedate"), False, tz, "EffectiveDate")
        expires = _date(cell("expirydate"), True, tz, "ExpiryDate")
        if effective is not None and expires is not None and expires < effective:
            raise RowInvalid("bad_date", "ExpiryDate is before EffectiveDate")
        # The whole text: the category slug is truncated and the reason may hold a mark.
        if immigration_refusal(text) is not None:
            raise RowRefused("immigration")
        category = agency_category(text)
        entry_id = "LOCAL-" + stable_id("agency", plate, state, text.casefold())[:16]
        if entry_id in seen:
            first = seen[entry_id]
            raise RowInvalid("duplicate", f"same plate, state and category as line {first}")
        seen[entry_id] = line_no
        return HotlistEntry(
            plate=plate,
            state=state,
            source=HotlistSource.LOCAL,
            reason=category.label,
            entry_id=entry_id,
            priority=category.priority,
            expires_at=expires,
            effective_at=effective,
            category=category.slug,
        )

    return guard_rows(chain(head, it), stats, parse_line)


def _split(line: str, delim: str) -> list[str]:
    try:
        return _cells(line, delim)
    except RowInvalid:
        return [line]


def _cells(raw: str, delim: str) -> list[str]:
    try:
        rows = list(csv.reader([raw], delimiter=delim, strict=True))
    except csv.Error as exc:
        raise RowInvalid("bad_quoting", f"bad quoting: {exc}") from None
    return rows[0] if rows else []


def _header_problem(raw: str, keys: list[str]) -> str | None:
    """Why a header cannot be trusted to say which field is which, or None."""
    if not is_utf8(raw):
        return "header is not valid UTF-8 (undecodable bytes)"
    repeated = sorted({k for k in keys if k in COLUMNS and keys.count(k) > 1})
    if repeated:
        return f"header repeats column(s) {', '.join(repeated)}"
    return None


def _key(cell: str) -> str:
    return "".join(cell.split()).casefold().removeprefix("\ufeff")


def _date(text: str, end_of_day: bool, tz: tzinfo, what: str) -> int | None:
    return parse_date_ms(text, end_of_day=end_of_day, tz=tz, what=what) if text else None
