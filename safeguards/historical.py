"""Historical hits: a newly added hotlist entry is checked against the retained reads.

When a hotlist update adds an entry (say a car reported stolen this morning), the reads
of the last 30 days that match it become alerts marked `historical=True`, with the same
deterministic id the real-time join would have given them (`flows.hotlist_join`).

Matching is the real-time matcher itself (`hotlists.matching.match_plates`, against the
live hotlist store): look-alike characters and the misread allowances of each source's
policy count exactly as they would have when the read was made, and entries that are
expired or were removed in the meantime match nothing. The retained plates are scanned
bucket by bucket and only hits on entries the update added are kept, so a full import
(hundreds of thousands of entries, announced as `added_truncated`) costs one pass over
the retained plates, as does a single Amber alert. A read captured before an entry's
`effective_at`, a read from another state than the entry's, and a read that is not
alertable never make a historical hit, as in real time.

A Redis marker per alert id (SET NX, expiring with the read) makes the same update, or
an overlapping one, produce each alert once; an alert the real-time flow already raised
is not raised again. The Kafka publisher sets the markers only after delivery, so a
crash in between repeats an alert (same id, dropped downstream) rather than losing it.
Entries whose reason points at a prohibited purpose (e.g. NCIC Immigration Violator
records) produce nothing.

Hotlist updates arrive on `alpr.hotlist-updates` as JSON events (`hotlists.events`);
`parse_hotlist_update` reads what an event added and ignores anything else (removals,
unknown shapes), so the importers can evolve.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import ValidationError

from hotlists.categories import VEHICLE_MARK
from hotlists.matching import Hit, match_plates
from hotlists.store import HotlistStore
from kernel.contracts import Alert, HotlistEntry, HotlistSource, PlateRead, make_alert
from kernel.plate_text import normalise_plate
from safeguards import KEY_PREFIX
from safeguards.alerts import AlertStore
from safeguards.policy import Policy
from safeguards.retention import ReadStore, now_ms

__all__ = ["AddedEntries", "historical_alerts", "mark_produced", "parse_hotlist_update"]

log = logging.getLogger(__name__)

_ADD_ACTIONS = {"add", "added", "upsert", "import", "replace"}
# Plates per hotlist lookup (one Redis round trip each, as in the real-time flow).
_MATCH_BATCH = 1000


def _key(entry: HotlistEntry) -> tuple[str, str, str]:
    return entry.source.value, entry.entry_id, normalise_plate(entry.plate)


@dataclass(frozen=True, slots=True)
class AddedEntries:
    """What hotlist updates added: the entries they name, and sources added wholesale
    (a first import, or one too big to list, whose added entries are no longer known)."""

    keys: frozenset[tuple[str, str, str]] = frozenset()  # (source, entry id, plate)
    sources: frozenset[HotlistSource] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[HotlistEntry] = (),
           sources: Iterable[HotlistSource] = ()) -> AddedEntries:
        return cls(frozenset(_key(e) for e in entries), frozenset(sources))

    def __or__(self, other: AddedEntries) -> AddedEntries:
        return AddedEntries(self.keys | other.keys, self.sources | other.sources)

    def __bool__(self) -> bool:
        return bool(self.keys or self.sources)

    def covers(self, entry: HotlistEntry) -> bool:
        return entry.source in self.sources or _key(entry) in self.keys


def historical_alerts(
    read_store: ReadStore,
    hotlists: HotlistStore,
    added: AddedEntries | Sequence[HotlistEntry],
    *,
    alert_store: AlertStore | None = None,
    policy: Policy | None = None,
    dedupe: redis.Redis | None = None,
    prefix: str = KEY_PREFIX,
    mark: bool = True,
) -> list[Alert]:
    """New historical alerts for the entries `added` (none already produced or raised).

    With `mark` (the default) they are recorded as produced at once. A publisher that
    must not lose one passes `mark=False` and calls `mark_produced` after delivery.
    """
    wanted = added if isinstance(added, AddedEntries) else AddedEntries.of(added)
    if not wanted:
        return []
    client = dedupe or read_store.client
    now = now_ms()
    screened: dict[tuple[str, str, str], bool] = {}

    def relevant(entry: HotlistEntry) -> bool:
        if not wanted.covers(entry):
            return False
        key = _key(entry)
        if key not in screened:
            # Same screen as searches: an entry for a prohibited purpose never alerts. What
            # it is listed for is screened, not the vehicle ("ICE WHITE" is a colour).
            listed_for = entry.reason.split(VEHICLE_MARK, 1)[0]
            bad = policy.screen(f"{listed_for} {entry.category or ''}") if policy else None
            if bad:
                log.warning("hotlist entry %s/%s skipped: prohibited purpose (%s)",
                            entry.source.value, entry.entry_id, bad)
            screened[key] = not bad
        return screened[key]

    candidates: dict[str, Alert] = {}
    for bucket, plates in read_store.plates_by_bucket():
        for i in range(0, len(plates), _MATCH_BATCH):
            part = plates[i:i + _MATCH_BATCH]
            hits = {plate: kept for plate, found in zip(part, match_plates(hotlists, part,
                                                                          now_ms=now), strict=True)
                    if (kept := [h for h in found if relevant(h.entry)])}
            if not hits:
                continue
            for read in read_store.reads_in_bucket(bucket, list(hits)):
                for hit in hits.get(normalise_plate(read.plate), ()):
                    if _applies(hit, read):
                        alert = make_alert(read, hit.entry, hit.match, now)
                        alert = alert.model_copy(update={"historical": True})
                        candidates.setdefault(alert.alert_id, alert)
    if not candidates:
        return []
    alerts = sorted(candidates.values(), key=lambda a: a.read.first_seen)
    if mark:
        new = mark_produced(read_store, alerts, dedupe=client, prefix=prefix)
    else:
        pipe = client.pipeline(transaction=False)
        for alert in alerts:
            pipe.exists(_marker(prefix, alert.alert_id))
        new = [not seen for seen in pipe.execute()]
    fresh = [a for a, is_new in zip(alerts, new, strict=True) if is_new]
    if alert_store is not None:
        fresh = [a for a in fresh if not alert_store.exists(a.alert_id)]
    return fresh


def _applies(hit: Hit, read: PlateRead) -> bool:
    """The per-read rules of the real-time join that a plate lookup cannot see."""
    entry = hit.entry
    if not read.alertable:  # low-confidence reads never alert
        return False
    if entry.state and read.state and entry.state.upper() != read.state.upper():
        return False
    # "never matches before this": a read made before the entry took effect is no hit.
    return entry.effective_at is None or read.first_seen >= entry.effective_at


def _marker(prefix: str, alert_id: str) -> str:
    return f"{prefix}hist:{alert_id}"


def mark_produced(
    read_store: ReadStore, alerts: Sequence[Alert], *, dedupe: redis.Redis | None = None,
    prefix: str = KEY_PREFIX,
) -> list[bool]:
    """Record alerts as produced (SET NX, expiring with their read); True = first time."""
    client = dedupe or read_store.client
    now = now_ms()
    pipe = client.pipeline(transaction=False)
    for alert in alerts:
        expire_at = max(now + 1, min(alert.read.first_seen, now) + read_store.retention_ms)
        pipe.set(_marker(prefix, alert.alert_id), "1", nx=True, pxat=expire_at)
    return [bool(ok) for ok in pipe.execute()]


def parse_hotlist_update(value: bytes | str | None,
                         hotlists: HotlistStore | None = None) -> AddedEntries:
    """What an update event added (empty for removals or unknown shapes).

    Events list their added entries (`added`, or `entries` with an add-like `action`);
    an import too big to list says `added_truncated` and the entries are read from the
    hotlist store (`added_entries` of that version), and a first import (`added_all`),
    or a version the store no longer holds, stands for every entry of its source.
    """
    if not value:
        return AddedEntries()
    try:
        event: Any = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        log.warning("hotlist update is not JSON: ignored")
        return AddedEntries()
    if not isinstance(event, dict):
        return AddedEntries()
    source = event.get("source")
    if isinstance(event.get("added"), list):
        return AddedEntries.of(_entries(event["added"], source))
    if isinstance(event.get("entries"), list) and str(
        event.get("action", "add")
    ).lower() in _ADD_ACTIONS:
        return AddedEntries.of(_entries(event["entries"], source))
    if event.get("added_truncated") or event.get("added_all"):
        return _added_in_store(event, hotlists)
    return AddedEntries()


def _added_in_store(event: dict[str, Any], hotlists: HotlistStore | None) -> AddedEntries:
    try:
        source = HotlistSource(str(event.get("source", "")).upper())
    except ValueError:
        log.warning("hotlist update for unknown source %r: ignored", event.get("source"))
        return AddedEntries()
    version = event.get("version")
    if not event.get("added_all") and hotlists is not None and isinstance(version, int):
        listed = hotlists.added_entries(source, version)
        if listed is not None:
            return AddedEntries.of(listed)
    # Everything of the source: wider than the update, but every hit is produced once.
    return AddedEntries.of(sources=[source])


def _entries(raw_entries: list[Any], source: Any) -> list[HotlistEntry]:
    entries: list[HotlistEntry] = []
    for raw in raw_entries:
        if not isinstance(raw, dict):
            continue
        if source and "source" not in raw:
            raw = {**raw, "source": source}
        try:
            entries.append(HotlistEntry.model_validate(raw))
        except ValidationError as exc:
            log.warning("hotlist update entry ignored: %s", exc.errors()[:1])
    return entries
