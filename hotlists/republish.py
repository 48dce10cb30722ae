"""Announcing a source's serving version again (`alpr hotlist republish`).

An import whose hotlist-update event was not published (the broker did not take it, or
Redis failed while its new entries were read back) leaves a live list whose new entries
historical hits never searched for. Importing the same file again does not repair that:
it is compared with the version now live, so its event adds nothing. Republishing
rebuilds, from the store, the event the import of the serving version would have sent
(hotlists.import_run.update_event: the same added entries, the same truncation of big
lists) under a new event id. Historical hits keep one marker per alert id, so entries
announced twice still alert once.

What the store cannot tell is announced wider, never narrower: a version with no import
report (the importer saves it with the switch-over; one written through the store
without a report has none) announces every live entry, as a first import would; so does
NCMEC, whose version collects single upserts rather than one import.

NCMEC's cancellations cannot be rebuilt from the store (a cancelled alert is gone from
it): its last import's report, saved as the source's last attempt, names them, and they
are announced as removed again (less any alert live again since). When that report is
not there (Redis failed before it was saved, or a later failed attempt replaced it), the
event removes nothing and `cancellations_lost` says why, for the command to say.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hotlists.events import HotlistUpdate
from hotlists.import_run import ImportReport, update_event
from hotlists.importers import Format, get_format
from hotlists.importers.base import ImportStats
from hotlists.plates import normalise_plate
from hotlists.store import HotlistStore, SourceStatus

__all__ = ["NothingLiveError", "Republished", "rebuild_update"]


class NothingLiveError(LookupError):
    """The source has no serving version: there is nothing to announce."""


@dataclass(frozen=True, slots=True)
class Republished:
    """The rebuilt event, and whether it names every live entry rather than what the
    version's import added (see the module's docstring)."""

    update: HotlistUpdate
    whole_list: bool
    # Upsert mode: why the last import's cancellations are not in `removed` (its report is
    # not in Redis); None when they are, or for a replace source.
    cancellations_lost: str | None = None

    @property
    def announced(self) -> int | None:
        """Entries announced as added (None: not counted, consumers ask the store)."""
        update = self.update
        if update.added_count is not None:
            return update.added_count
        return len(update.added) if update.added is not None else None


def rebuild_update(store: HotlistStore, fmt: str | Format) -> Republished:
    """The update event of the version serving for `fmt`'s source (a new event id).

    Raises NothingLiveError when the source has no serving version; Redis errors
    propagate (the event reads the entries back)."""
    f = get_format(fmt) if isinstance(fmt, str) else fmt
    status = store.status().get(f.source)
    if status is None or status.version is None:
        raise NothingLiveError(f"{f.source.value} has no live version: nothing to republish "
                               "(import a list first)")
    saved = _saved_report(status) if f.mode == "replace" else None
    report = (_from_saved(f, status, saved) if saved is not None
              else _whole_list(store, f, status))
    lost = _last_cancellations(status, report) if f.mode == "upsert" else None
    return Republished(update_event(store, report), whole_list=saved is None,
                       cancellations_lost=lost)


def _last_cancellations(status: SourceStatus, report: ImportReport) -> str | None:
    """Put the cancellations of the source's last import (its report, the last attempt)
    in `report`'s removed entries, but for alerts live again since (consumers must not
    drop those). Returns why they are unknown, or None."""
    last = status.last_attempt
    if not isinstance(last, dict) or last.get("report_missing"):
        return "no import report of it is in Redis (it was never saved)"
    if not last.get("ok"):
        return ("the last attempt recorded failed and replaced the report of the import "
                "before it")
    named = last.get("removed_entries")
    if not isinstance(named, list):
        return "its import report does not name them (saved by an older version)"
    live = {(e.plate, e.entry_id) for e in report.extra.get("upserted_entries", [])}
    report.extra["removed_entries"] = [
        (r["plate"], r["entry_id"]) for r in named
        if (normalise_plate(r["plate"]), r["entry_id"]) not in live
    ]
    return None


def _saved_report(status: SourceStatus) -> dict[str, Any] | None:
    """The serving version's import report, if it was saved (it lives with the version,
    so it is that version's; checked anyway)."""
    saved = status.report
    if not isinstance(saved, dict) or saved.get("version") != status.version:
        return None
    return saved


def _from_saved(f: Format, status: SourceStatus, saved: dict[str, Any]) -> ImportReport:
    """The import's report as the importer had it when it built the event."""
    stats = ImportStats(
        rows=int(saved.get("rows") or 0),
        accepted=int(saved.get("accepted") or 0),
        rejected=Counter(saved.get("rejected_by_code") or {}),
        refused=Counter(saved.get("refused_by_reason") or {}),
    )
    return ImportReport(
        f.name, f.source, f.mode, saved.get("file"), stats,
        ok=True,
        version=status.version,
        previous_version=saved.get("previous_version"),
        entries=int(saved.get("entries") or status.entries),
        skipped_expired=int(saved.get("skipped_expired") or 0),
        added=saved.get("added"),
        finished_at=int(saved.get("finished_at") or status.imported_at or 0),
    )


def _whole_list(store: HotlistStore, f: Format, status: SourceStatus) -> ImportReport:
    """Every live entry announced as added: for a replace source as a first import
    (`added_all`, truncated when big), for an upsert source as one upsert of them all."""
    report = ImportReport(
        f.name, f.source, f.mode, None, ImportStats(),
        ok=True,
        version=status.version,
        entries=status.entries,
        # When the announced state arose: an upsert source's last upsert, else the flip.
        finished_at=(status.updated_at if f.mode == "upsert" else None)
        or status.imported_at or 0,
    )
    if f.mode == "upsert":
        live = list(store.iter_entries(f.source))
        report.extra["upserted_entries"] = live
        report.added = len(live)
    return report
