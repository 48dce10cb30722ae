"""Historical hits: a newly added hotlist entry is checked against the retained reads.

When a hotlist update adds an entry (say a car reported stolen this morning), the reads
of the last 30 days that match it become alerts marked `historical=True`, with the same
deterministic id the real-time join would have given them (`flows.hotlist_join`). A
Redis marker per alert id (SET NX, expiring with the read) makes the same update, or an
overlapping one, produce each alert once; an alert the real-time flow already raised is
not raised again. The Kafka publisher sets the markers only after delivery, so a crash
in between repeats an alert (same id, dropped downstream) rather than losing it.
Entries that are expired, or whose reason points at a prohibited purpose (e.g. NCIC
Immigration Violator records), produce nothing.

Hotlist updates arrive on `alpr.hotlist-updates` as JSON events; `parse_hotlist_update`
accepts `{"source": ..., "added": [HotlistEntry, ...]}` (or `"entries"` with an `"action"`
of add/upsert/import) and ignores anything else, so the importers can evolve.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import redis
from pydantic import ValidationError

from alpr.contracts import Alert, HotlistEntry, MatchInfo
from flows.hotlist_join import make_alert
from hotlists.store import normalise_plate
from safeguards import KEY_PREFIX
from safeguards.alerts import AlertStore
from safeguards.policy import Policy
from safeguards.retention import ReadStore, now_ms

__all__ = ["historical_alerts", "mark_produced", "parse_hotlist_update"]

log = logging.getLogger(__name__)

_ADD_ACTIONS = {"add", "added", "upsert", "import", "replace"}


def historical_alerts(
    read_store: ReadStore,
    entries: Sequence[HotlistEntry],
    *,
    alert_store: AlertStore | None = None,
    policy: Policy | None = None,
    dedupe: redis.Redis | None = None,
    prefix: str = KEY_PREFIX,
    mark: bool = True,
) -> list[Alert]:
    """New historical alerts for `entries` (none already produced or already raised).

    With `mark` (the default) they are recorded as produced at once. A publisher that
    must not lose one passes `mark=False` and calls `mark_produced` after delivery.
    """
    client = dedupe or read_store.client
    now = now_ms()
    candidates: dict[str, Alert] = {}
    for entry in entries:
        if entry.expires_at is not None and entry.expires_at <= now:
            continue
        if policy is not None and policy.screen(f"{entry.reason} {entry.category or ''}"):
            log.warning("hotlist entry %s/%s skipped: prohibited purpose",
                        entry.source.value, entry.entry_id)
            continue
        plate = normalise_plate(entry.plate)
        if not plate:
            continue
        for read in read_store.reads_for_plate(plate):
            if not read.alertable:  # same rule as real time: low-confidence reads never alert
                continue
            match = MatchInfo(method="exact", hotlist_plate=entry.plate, read_plate=read.plate)
            alert = make_alert(read, entry, match, now).model_copy(update={"historical": True})
            candidates.setdefault(alert.alert_id, alert)
    if not candidates:
        return []
    alerts = list(candidates.values())
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


def parse_hotlist_update(value: bytes | str | None) -> list[HotlistEntry]:
    """The entries an update event adds (empty for removals or unknown shapes)."""
    if not value:
        return []
    try:
        event: Any = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        log.warning("hotlist update is not JSON: ignored")
        return []
    if not isinstance(event, dict):
        return []
    if isinstance(event.get("added"), list):
        raw_entries = event["added"]
    elif isinstance(event.get("entries"), list) and str(
        event.get("action", "add")
    ).lower() in _ADD_ACTIONS:
        raw_entries = event["entries"]
    else:
        return []
    source = event.get("source")
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
