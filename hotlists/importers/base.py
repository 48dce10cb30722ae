"""What every importer shares: row rejections, refusals, counters and field parsers.

An importer is a generator: lines in, HotlistEntry out. A malformed row never raises: it
becomes a Rejection (1-based line number, machine-readable code, detail, raw text) in the
ImportStats the caller passed; an immigration-related row becomes a refusal (counted,
never stored). The import service (hotlists.import_run) decides from the counters whether
the file is good enough to replace the serving list.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from hotlists.categories import entry_refusal
from hotlists.plates import normalise_plate
from kernel.contracts import HotlistEntry

__all__ = [
    "MAX_PLATE_LEN",
    "SAMPLE_LIMIT",
    "HeaderRule",
    "ImportStats",
    "Parser",
    "Rejection",
    "RowInvalid",
    "RowRefused",
    "guard_rows",
    "header_marked",
    "is_utf8",
    "parse_date_ms",
    "parse_plate",
    "parse_state",
]

# NCIC's licence plate field is 10 characters: anything longer is not a plate.
MAX_PLATE_LEN = 10
# Rejections kept with their text (the counters cover all of them).
SAMPLE_LIMIT = 100
_STATE = re.compile(r"[A-Z]{2}")
# What a plate field may hold before normalising: letters, digits, spaces, dashes.
_PLATE_FIELD = re.compile(r"[A-Za-z0-9 \-]+")
_WORD = re.compile(r"[A-Z0-9]+")


class RowInvalid(ValueError):
    """A row cannot be imported; `code` says why in one machine-readable word."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class RowRefused(Exception):
    """A well-formed row of a kind never stored (immigration): counted, not rejected."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejection:
    line_no: int  # 1-based physical line in the file
    code: str  # e.g. bad_plate, bad_state, bad_date, unknown_list_code
    detail: str
    raw: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line_no, "code": self.code, "detail": self.detail, "raw": self.raw}


@dataclass(slots=True)
class ImportStats:
    """Counters an importer fills while it parses (one per file)."""

    rows: int = 0  # data rows seen (blank lines and headers excluded)
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # code -> rows
    refused: Counter[str] = field(default_factory=Counter)  # reason -> rows (never stored)
    samples: list[Rejection] = field(default_factory=list)  # first SAMPLE_LIMIT rejections
    refused_lines: list[int] = field(default_factory=list)  # first SAMPLE_LIMIT refusals
    header: str | None = None  # the header line, recognised by its content (not data)
    unknown_categories: Counter[str] = field(default_factory=Counter)  # kept, but new to us
    removals: list[tuple[str, str]] = field(default_factory=list)  # (plate, entry_id) to drop

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def bad_share(self) -> float:
        """Malformed rows over data rows (refusals are policy, not malformation)."""
        return self.rejected_total / self.rows if self.rows else 0.0

    def reject(self, line_no: int, code: str, detail: str, raw: str) -> None:
        self.rejected[code] += 1
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(Rejection(line_no, code, detail, _printable(raw)))

    def refuse(self, line_no: int, reason: str) -> None:
        self.refused[reason] += 1
        if len(self.refused_lines) < SAMPLE_LIMIT:
            self.refused_lines.append(line_no)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected_total,
            "rejected_by_code": dict(self.rejected),
            "rejections": [r.as_dict() for r in self.samples],
            "refused": self.refused_total,
            "refused_by_reason": dict(self.refused),
            "refused_lines": list(self.refused_lines),
            "header": self.header,
            "unknown_categories": dict(self.unknown_categories),
            "removals": len(self.removals),
        }


# An importer: the file's lines (text, newline kept or not) and the stats to fill.
Parser = Callable[[Iterable[str], ImportStats], Iterator[HotlistEntry]]


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """How a fixed-width format's header line is told from its records: by its content.

    Position alone is no proof: a first line that is merely malformed must be rejected
    and counted like any other, not skipped unseen."""

    is_header: Callable[[str], bool]
    described: str  # what a header looks like, for the rejection of a first line


def header_marked(raw: str, name: str) -> bool:
    """Whether a line reads like a header of the `name` format: it starts with the name
    ("NCIC LPR EXTRACT 202401150600") or names the PLATE and STATE columns."""
    words = _WORD.findall(raw.upper())
    return bool(words) and (words[0] == name or {"PLATE", "STATE"} <= set(words))


def guard_rows(
    lines: Iterable[str],
    stats: ImportStats,
    parse_row: Callable[[int, str], HotlistEntry | None],
    *,
    header: HeaderRule | None = None,
) -> Iterator[HotlistEntry]:
    """Run `parse_row(line_no, text)` on every non-blank line and turn its RowInvalid into
    a rejection, and its RowRefused or an immigration-related entry into a refusal.
    parse_row returns None for lines that carry no entry (headers, removals).

    With a `header` rule, a first non-blank line the rule recognises is kept in
    stats.header instead of being parsed; any other first line is a row like the rest."""
    top = True
    for line_no, line in enumerate(lines, start=1):
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        at_top, top = top, False
        if at_top and header is not None and header.is_header(raw):
            stats.header = _printable(raw)
            continue
        try:
            entry = parse_row(line_no, raw)
        except RowInvalid as exc:
            stats.rows += 1
            detail = exc.detail
            if at_top and header is not None:
                # The operator's question when line 1 is rejected: why not a header?
                detail += f"; not a header either ({header.described})"
            stats.reject(line_no, exc.code, detail, raw)
            continue
        except RowRefused as exc:
            stats.rows += 1
            stats.refuse(line_no, exc.reason)
            continue
        if entry is None:
            continue
        stats.rows += 1
        # Backstop: the importer refuses on its category text; this catches the rest.
        if entry_refusal(entry.reason, entry.category) is not None:
            stats.refuse(line_no, "immigration")
            continue
        stats.accepted += 1
        yield entry


def is_utf8(text: str) -> bool:
    """Whether `text` can be written out as UTF-8. Files are read with surrogateescape,
    so an undecodable byte survives as a lone surrogate, which no store write or report
    can encode: the importer rejects that row (bad_encoding), not the whole import."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_plate(text: str) -> str:
    """A plate field -> normalised plate, or RowInvalid."""
    stripped = text.strip()
    if not stripped:
        raise RowInvalid("empty_plate", "empty plate")
    if not _PLATE_FIELD.fullmatch(stripped):
        raise RowInvalid("bad_plate", f"plate {stripped!r} holds characters a plate cannot")
    plate = normalise_plate(stripped)
    if not plate:
        raise RowInvalid("empty_plate", "empty plate")
    if len(plate) > MAX_PLATE_LEN:
        raise RowInvalid("bad_plate", f"plate {plate!r} longer than {MAX_PLATE_LEN} characters")
    return plate


def parse_state(text: str, *, required: bool = False) -> str | None:
    """A two-letter state/province code (upper-cased), None if blank and not required."""
    state = text.strip().upper()
    if not state:
        if required:
            raise RowInvalid("bad_state", "missing state")
        return None
    if not _STATE.fullmatch(state):
        raise RowInvalid("bad_state", f"state {text.strip()!r} is not a two-letter code")
    return state


_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def parse_date_ms(text: str, *, end_of_day: bool, tz: tzinfo = UTC, what: str = "date") -> int:
    """Epoch ms of a date or date-time field.

    Accepts YYYY-MM-DD, YYYYMMDD, MM/DD/YYYY (US agency lists), ISO date-times and epoch
    milliseconds. A bare date means its start, or with end_of_day its last millisecond
    (an entry "expiring 2030-01-31" lives through that day); dates and naive date-times
    are read in `tz`.
    """
    value = text.strip()
    if value.isdigit() and len(value) in (9, 10):
        # 1973-2286 in seconds: the commonest slip when a list gives epoch times.
        raise RowInvalid("bad_date", f"{what} {value!r} looks like epoch seconds, not ms")
    try:
        if value.isdigit() and len(value) >= 11:
            return int(value)
        day: date | None = None
        if value.isdigit() and len(value) == 8:
            day = date(int(value[:4]), int(value[4:6]), int(value[6:]))
        elif m := _US_DATE.fullmatch(value):
            day = date(int(m[3]), int(m[1]), int(m[2]))
        elif len(value) == 10:
            day = date.fromisoformat(value)
        if day is not None:
            if end_of_day:
                end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
                return int(end.timestamp() * 1000) - 1
            return int(datetime.combine(day, time(), tzinfo=tz).timestamp() * 1000)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RowInvalid(
            "bad_date",
            f"{what} {value!r} is not a date (YYYY-MM-DD, YYYYMMDD, MM/DD/YYYY, ISO "
            "date-time or epoch ms)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp() * 1000)


def _printable(raw: str) -> str:
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")[:500]
