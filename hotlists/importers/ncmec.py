"""NCMEC Amber alerts: urgent single entries, added (upserted) one by one, never a whole
list replacement.

A drop holds JSON objects: JSON Lines, one pretty-printed object, or an array of them.
Fields:

    alert_id  required   the NCMEC alert id (the entry id: a re-sent alert replaces itself)
    plate     required
    state     optional   two letters
    vehicle   optional   description for the person verifying ("silver 2015 Toyota Camry")
    issued    optional   date-time the alert was issued (shown in the reason)
    expires   optional   date-time after which the entry never matches
    status    optional   "active" (default), or "cancelled"/"resolved": removes the alert

An alert holding text that is not UTF-8 (undecodable bytes, or a lone-surrogate \\u
escape), in any field or field name, is rejected (bad_encoding).

Every entry is priority 1, category amber_alert: urgent entries tolerate one extra
differing character by default (hotlists.match_policy).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from hotlists.categories import entry_refusal, with_vehicle
from hotlists.importers.base import (
    ImportStats,
    RowInvalid,
    is_utf8,
    parse_date_ms,
    parse_plate,
    parse_state,
)
from kernel.contracts import HotlistEntry, HotlistSource

__all__ = ["ENCODING", "parse_ncmec"]

ENCODING = "utf-8-sig"
_REMOVE_STATUSES = {"cancelled", "canceled", "resolved", "closed"}
_FIELDS = {"alert_id", "plate", "state", "vehicle", "issued", "expires", "status"}
# Characters decoded at least, from a record's start to the next newline (_decode_at).
_WINDOW = 256


def parse_ncmec(lines: Iterable[str], stats: ImportStats) -> Iterator[HotlistEntry]:
    """Active alerts as entries; cancelled ones go to stats.removals, bad records to
    stats rejections (with the line each record starts on)."""
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    for line_no, record in _records(text):
        stats.rows += 1
        try:
            if isinstance(record, _Bad):
                raise RowInvalid("bad_json", record.detail)
            # Checked before any field, so no detail quotes a lone surrogate either.
            if not is_utf8(json.dumps(record, ensure_ascii=False)):
                detail = "not valid UTF-8 (undecodable bytes or a lone \\ud800-\\udfff escape)"
                raise RowInvalid("bad_encoding", detail)
            entry = _entry(record, stats)
        except RowInvalid as exc:
            # The record as read, for the report: serialised only for a rejected record.
            raw = record.raw if isinstance(record, _Bad) else json.dumps(record)[:500]
            stats.reject(line_no, exc.code, exc.detail, raw)
            continue
        if entry is None:
            continue
        # Counted here rather than refused by the store halfway through the upserts.
        if entry_refusal(entry.reason, entry.category) is not None:
            stats.refuse(line_no, "immigration")
            continue
        stats.accepted += 1
        yield entry


class _Bad:
    def __init__(self, detail: str, raw: str) -> None:
        self.detail = detail
        self.raw = raw


def _records(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) for every JSON value in `text`, in order.

    Walks the text with raw_decode, so JSON Lines, one multi-line object and an array
    all work; a value that does not decode becomes a _Bad for its line, and reading
    resumes on the next line."""
    decoder = json.JSONDecoder()
    pos, n = 0, len(text)
    # The line number is carried forward, counting only the newlines since the previous
    # value: counting from the start of the text for every value made parsing quadratic.
    line_no, counted_to = 1, 0
    in_array = text.lstrip().startswith("[")
    if in_array:
        pos = text.index("[") + 1
    while True:
        while pos < n and (text[pos].isspace() or (in_array and text[pos] == ",")):
            pos += 1
        if pos >= n or (in_array and text[pos] == "]"):
            return
        line_no += text.count("\n", counted_to, pos)
        counted_to = pos
        try:
            value, pos = _decode_at(decoder, text, pos)
        except json.JSONDecodeError as exc:
            end = text.find("\n", pos)
            end = n if end < 0 else end
            yield line_no, _Bad(f"not JSON: {exc.msg}", text[pos:end][:500])
            pos = end
            continue
        yield line_no, value


def _decode_at(decoder: json.JSONDecoder, text: str, pos: int) -> tuple[Any, int]:
    """decoder.raw_decode(text, pos), decoding only a window of the text that ends just
    after a newline, and widening it (doubling) while the value needs more.

    Decoding the whole text would make every error cost a scan from its top: a
    JSONDecodeError counts the newlines before its position (its lineno). The window
    decides as the whole text would: no JSON token holds a raw newline (in a string it
    is an error right there, the decoder being strict; a number or literal stops at
    it), so the scanner looks past the window's last newline only as whitespace
    between tokens, and then either needs more (its error is at the window's end:
    widen) or the value is complete."""
    n = len(text)
    stop = pos
    while True:
        newline = text.find("\n", max(pos + 2 * (stop - pos), pos + _WINDOW))
        stop = n if newline < 0 else newline + 1
        window = text[pos:stop]
        try:
            value, end = decoder.raw_decode(window)
        except json.JSONDecodeError as exc:
            if exc.pos < len(window) or stop >= n:
                raise
            continue
        return value, pos + end


def _entry(record: Any, stats: ImportStats) -> HotlistEntry | None:
    if not isinstance(record, dict):
        raise RowInvalid("bad_record", "an alert must be a JSON object")
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise RowInvalid("unknown_field", f"unknown field(s): {', '.join(unknown)}")
    alert_id = _text(record, "alert_id")
    if not alert_id:
        raise RowInvalid("missing_alert_id", "alert_id is required")
    plate = parse_plate(_text(record, "plate"))
    status = _text(record, "status").casefold() or "active"
    if status in _REMOVE_STATUSES:
        stats.removals.append((plate, alert_id))
        return None
    if status != "active":
        raise RowInvalid("bad_status", f"status {status!r} is not active or cancelled")
    state = parse_state(_text(record, "state"))
    expires = _date(record, "expires", end_of_day=True)
    issued = _date(record, "issued", end_of_day=False)
    reason = f"Amber alert {alert_id}"
    if issued is not None:
        reason += f" (issued {datetime.fromtimestamp(issued / 1000, UTC):%Y-%m-%d %H:%MZ})"
    reason = with_vehicle(reason, " ".join(_text(record, "vehicle").split()))
    return HotlistEntry(
        plate=plate,
        state=state,
        source=HotlistSource.NCMEC,
        reason=reason,
        entry_id=alert_id,
        priority=1,
        expires_at=expires,
        category="amber_alert",
    )


def _text(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise RowInvalid("bad_field", f"{name} must be text")
    return str(value).strip()


def _date(record: dict[str, Any], name: str, *, end_of_day: bool) -> int | None:
    text = _text(record, name)
    return parse_date_ms(text, end_of_day=end_of_day, what=name) if text else None
