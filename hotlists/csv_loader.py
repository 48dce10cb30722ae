"""Loader for the project's own hotlist CSV.

Header (first non-blank line; column order free, names case-insensitive):

    plate,state,source,reason,entry_id,priority,expires_at[,category]

plate, source, reason and entry_id are required in every row; state, priority (1-5,
default 2), expires_at and category may be empty. expires_at is epoch milliseconds, an
ISO date (the entry lives through that whole day) or an ISO datetime; dates and naive
datetimes are read in `tz` (UTC by default).

Every physical line is one record: a hotlist field never holds a newline, and parsing
line by line keeps a stray quote from swallowing the rest of the file. A malformed row
becomes a RowError (1-based line number, reason, raw text) and is skipped; the loader
never raises on bad content.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import IO

from pydantic import ValidationError

from alpr.contracts import HotlistEntry, HotlistSource
from hotlists.store import normalise_plate

__all__ = ["COLUMNS", "REQUIRED_COLUMNS", "RowError", "load_csv"]

COLUMNS = ("plate", "state", "source", "reason", "entry_id", "priority", "expires_at")
REQUIRED_COLUMNS = ("plate", "source", "reason", "entry_id")
OPTIONAL_COLUMNS = ("state", "priority", "expires_at", "category")

# NCIC's licence plate field is 10 characters: anything longer is not a plate.
MAX_PLATE_LEN = 10
# Epoch ms below this (March 1973) are almost surely epoch seconds typed by mistake.
_MIN_EPOCH_MS = 100_000_000_000
_STATE = re.compile(r"[A-Z]{2}")
_SOURCES = {s.value for s in HotlistSource}


@dataclass(frozen=True, slots=True)
class RowError:
    line_no: int  # 1-based physical line in the file
    reason: str
    raw: str


class _RowInvalid(ValueError):
    pass


def load_csv(
    source: str | os.PathLike[str] | IO[str] | IO[bytes] | Iterable[str],
    *,
    tz: tzinfo = UTC,
) -> tuple[list[HotlistEntry], list[RowError]]:
    """Parse a hotlist CSV (path, text or binary file, or iterable of lines).

    Returns the valid entries (plates normalised) and one RowError per skipped line.
    """
    if isinstance(source, str | os.PathLike):
        # surrogateescape: invalid UTF-8 becomes a row error instead of an exception.
        with open(source, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            return _parse(f, tz)
    if isinstance(source, io.RawIOBase | io.BufferedIOBase):
        text = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            return _parse(text, tz)
        finally:
            text.detach()  # leave the caller's file open
    return _parse(source, tz)  # type: ignore[arg-type]


def _parse(lines: Iterable[str], tz: tzinfo) -> tuple[list[HotlistEntry], list[RowError]]:
    entries: list[HotlistEntry] = []
    errors: list[RowError] = []
    header: list[str] | None = None
    seen: dict[tuple[str, str], int] = {}
    for line_no, line in enumerate(lines, start=1):
        if line_no == 1:
            line = line.removeprefix("\ufeff")  # BOM of a text stream opened by the caller
        raw = line.rstrip("\r\n")
        if not raw.strip():
            continue
        try:
            if _has_bad_utf8(raw):
                raise _RowInvalid("not valid UTF-8")
            cells = _cells(raw)
            if header is None:
                header = _header(cells)
                continue
            entry = _entry(header, cells, tz)
            key = (entry.source.value, entry.entry_id)
            if key in seen:
                raise _RowInvalid(
                    f"duplicate entry_id {entry.entry_id!r} for {entry.source} "
                    f"(first on line {seen[key]})"
                )
            seen[key] = line_no
            entries.append(entry)
        except _RowInvalid as exc:
            errors.append(RowError(line_no, str(exc), _printable(raw)))
            if header is None:
                # Without a usable header no row can be read.
                return [], errors
    return entries, errors


def _has_bad_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(raw: str) -> str:
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _cells(raw: str) -> list[str]:
    try:
        rows = list(csv.reader([raw], strict=True))
    except csv.Error as exc:
        raise _RowInvalid(f"bad CSV quoting: {exc}") from None
    return [c.strip() for c in rows[0]] if rows else []


def _header(cells: list[str]) -> list[str]:
    names = [c.lower() for c in cells]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise _RowInvalid(
            f"header must name the columns {','.join(COLUMNS)}; missing: {','.join(missing)}"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _RowInvalid(f"header repeats column(s): {','.join(dupes)}")
    return names


def _entry(header: list[str], cells: list[str], tz: tzinfo) -> HotlistEntry:
    if len(cells) != len(header):
        raise _RowInvalid(f"expected {len(header)} fields, got {len(cells)}")
    row = dict(zip(header, cells, strict=True))

    plate = normalise_plate(row["plate"])
    if not plate:
        raise _RowInvalid("empty plate")
    if len(plate) > MAX_PLATE_LEN:
        raise _RowInvalid(f"plate {plate!r} longer than {MAX_PLATE_LEN} characters")

    source = row["source"].upper()
    if source not in _SOURCES:
        known = ", ".join(sorted(_SOURCES))
        raise _RowInvalid(f"unknown source {row['source']!r} (one of {known})")

    state = row.get("state", "").upper() or None
    if state is not None and not _STATE.fullmatch(state):
        raise _RowInvalid(f"state {row['state']!r} is not a two-letter code")

    for name in ("reason", "entry_id"):
        if not row[name]:
            raise _RowInvalid(f"empty {name}")

    priority_text = row.get("priority", "")
    try:
        priority = int(priority_text) if priority_text else 2
    except ValueError:
        raise _RowInvalid(f"priority {priority_text!r} is not a number 1-5") from None
    if not 1 <= priority <= 5:
        raise _RowInvalid(f"priority {priority} is not in 1-5")

    try:
        return HotlistEntry(
            plate=plate,
            state=state,
            source=HotlistSource(source),
            reason=row["reason"],
            entry_id=row["entry_id"],
            priority=priority,
            expires_at=_expires_at(row.get("expires_at", ""), tz),
            category=row.get("category") or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _RowInvalid(f"{where}: {first['msg']}") from None


def _expires_at(text: str, tz: tzinfo) -> int | None:
    """Epoch ms, or None for no expiry."""
    if not text:
        return None
    if text.isdigit():
        value = int(text)
        if value < _MIN_EPOCH_MS:
            raise _RowInvalid(f"expires_at {text} looks like epoch seconds; use milliseconds")
        return value
    try:
        if len(text) == 10:
            # A bare date: the entry is live through the whole day.
            day = date.fromisoformat(text)
            end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
            return int(end.timestamp() * 1000) - 1
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _RowInvalid(
            f"expires_at {text!r} is not epoch ms, an ISO date or an ISO datetime"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp() * 1000)
