"""The NCIC licence plate reader extract (FBI CJIS): fixed-width records, refreshed twice
a day, one file replacing the whole NCIC list.

Columns (0-based, end exclusive), as the open-source openalpr hotlist importer reads them:

    0       list code: V P W M A F C H K L R T X (hotlists.categories.NCIC_LIST_CODES)
    1-19    NCIC number and ORI (believed; unverified): with the code, the entry id
    19-27   incident date YYYYMMDD (may be blank)
    27-37   plate, space padded
    37-39   plate state
    39-43   tag year, 45-49 vehicle year, 49-53 make, 53-56 model, 58- colour

    V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK

Lines are read as Latin-1 so a stray non-ASCII byte never shifts the columns. A header
is told by its content: a first line that starts with NCIC ("NCIC LPR EXTRACT
202401150600") or names the PLATE and STATE columns, and is no record; any other
malformed first line is rejected like the rest. Immigration Violator records are
refused (counted, never stored); an unknown list code is a malformed row. The reason
reads "Stolen vehicle (incident 2019-05-09) | vehicle: BLK 2009 YAMA CYL".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from datetime import date

from hotlists.categories import NCIC_IMMIGRATION_CODE, NCIC_LIST_CODES, with_vehicle
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
from kernel.contracts import HotlistEntry, HotlistSource

__all__ = ["ENCODING", "format_record", "parse_ncic"]

ENCODING = "latin-1"
_MIN_LENGTH = 39  # through the state field


def parse_ncic(lines: Iterable[str], stats: ImportStats) -> Iterator[HotlistEntry]:
    """NCIC entries of an extract's lines; rejections and refusals go to `stats`."""
    return guard_rows(lines, stats, _parse_line, header=_HEADER)


def _parse_line(line_no: int, raw: str) -> HotlistEntry:
    if len(raw) < _MIN_LENGTH:
        raise RowInvalid(
            "short_line", f"{len(raw)} characters; a record has at least {_MIN_LENGTH}"
        )
    code = raw[0]
    category = NCIC_LIST_CODES.get(code)
    if category is None:
        if code == NCIC_IMMIGRATION_CODE:
            raise RowRefused("immigration")  # counted, never stored
        raise RowInvalid("unknown_list_code", f"list code {code!r} is not an NCIC list")
    incident = _incident_date(raw[19:27])
    plate = parse_plate(raw[27:37])
    # The openalpr importer fixes a zero typed for the letter O (0H, 0K, 0R).
    state = parse_state(raw[37:39].replace("0", "O"), required=True)
    record_id = raw[1:19].strip()
    entry_id = f"{code}{record_id}" if record_id else f"{code}-{plate}-{state}"
    reason = category.label
    if incident:
        reason += f" (incident {incident})"
    reason = with_vehicle(reason, _vehicle(raw))
    # Validated: pydantic-core's constructor is faster than model_construct (measured
    # 1.3 vs 3.5 us an entry), so a million rows pay nothing for the check.
    return HotlistEntry(
        plate=plate,
        state=state,
        source=HotlistSource.NCIC,
        reason=reason,
        entry_id=entry_id,
        priority=category.priority,
        expires_at=None,
        effective_at=None,
        category=category.slug,
    )


def _is_header(raw: str) -> bool:
    if not header_marked(raw, "NCIC"):
        return False
    try:
        _parse_line(0, raw)
    except RowInvalid:
        return True
    except RowRefused:
        return False
    return False  # a valid record that happens to carry the words stays a record


_HEADER = HeaderRule(_is_header, "a header starts with NCIC or names the PLATE and STATE columns")


@functools.lru_cache(maxsize=16384)  # dates repeat across a million rows
def _incident_date(text: str) -> str | None:
    value = text.strip()
    if not value:
        return None
    try:
        if len(value) != 8 or not value.isdigit():
            raise ValueError
        return date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        raise RowInvalid("bad_date", f"incident date {value!r} is not YYYYMMDD") from None


def _vehicle(raw: str) -> str:
    """'BLK 2009 YAMA CYL': colour, year, make, model, as a dispatcher compares them."""
    parts = (raw[58:].strip(), raw[45:49].strip(), raw[49:53].strip(), raw[53:56].strip())
    return " ".join(p for p in parts if p.isprintable() and p)


def format_record(
    code: str,
    plate: str,
    state: str,
    *,
    record_id: str = "",
    incident: str = "",
    tag_year: str = "",
    vehicle_year: str = "",
    make: str = "",
    model: str = "",
    colour: str = "",
) -> str:
    """One extract line (for tests, fixtures and the benchmark's generated file)."""
    return (
        f"{code:1.1}{record_id:18.18}{incident:8.8}{plate:10.10}{state:2.2}"
        f"{tag_year:4.4}{'':2}{vehicle_year:4.4}{make:4.4}{model:3.3}{'':2}{colour}"
    )
