"""Running one import: file -> parser -> checks -> store -> report -> event.

The safety rules live here, in front of the store's atomic swap:

* the whole file is parsed before the new version goes live; if more than
  `max_bad_share` of its data rows are malformed the import aborts and the previous
  version keeps serving (the parser's generator raises at its end, inside the store's
  write, which abandons the half-written version);
* an empty file (or one whose every row was refused or had expired) never wipes a list,
  and a file with fewer than (1 - max_shrink) of the serving entries is taken for a
  truncated feed; `force` overrides both;
* immigration-related rows are refused and counted, never stored;
* every outcome is kept for `alpr hotlist status` (the serving version's report, and the
  latest attempt even when it failed), and every change is announced on
  alpr.hotlist-updates. A replacement's report is saved by its switch-over itself, so a
  live version always has one; failing to add its event's outcome to it afterwards
  (Redis gone right after the switch-over) is a warning (`report_error`), never a failed
  import;
* an upsert-mode import (NCMEC) has no switch-over: its alerts go live one by one, so
  Redis failing part-way is never said as "unchanged" (ImportPartialError says which
  alerts are live, which one may be, which are not), nor is an interrupt (Ctrl-C,
  SIGTERM) once the first change was sent (ImportInterruptedError says the same).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, Literal

import redis

from hotlists.events import HotlistUpdate, UpdatePublisher, new_event_id
from hotlists.importers import Format, get_format
from hotlists.importers.base import ImportStats
from hotlists.store import HotlistStore, ImportResult, SwitchOverUnknownError
from kernel.contracts import HotlistEntry, HotlistSource

__all__ = [
    "DEFAULT_MAX_BAD_SHARE",
    "DEFAULT_MAX_SHRINK",
    "AlertChange",
    "ImportFailedError",
    "ImportInterruptedError",
    "ImportOutcomeUnknownError",
    "ImportPartialError",
    "ImportReport",
    "Importer",
    "ListShrinkError",
    "TooManyBadRowsError",
    "update_event",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BAD_SHARE = 0.05
DEFAULT_MAX_SHRINK = 0.5
# Imports smaller than this are never suspected of being truncated.
_SHRINK_MIN_ENTRIES = 100
# Added entries carried in the event itself up to this many (else: ask the store).
INLINE_ADDED_LIMIT = 1000
# Lines between two progress callbacks.
_PROGRESS_EVERY = 2048


class TooManyBadRowsError(ValueError):
    """More malformed rows than the configured share: the file is not imported."""


class ListShrinkError(ValueError):
    """The file has far fewer entries than the serving list: probably truncated."""


@dataclass(slots=True)
class ImportReport:
    format: str
    source: HotlistSource
    mode: str
    file: str | None
    stats: ImportStats
    ok: bool = False
    error: str | None = None
    version: int | None = None
    previous_version: int | None = None
    entries: int = 0  # serving after the import
    skipped_expired: int = 0
    added: int | None = None
    upserted: int = 0
    removed: int = 0
    index_depth: int = 0
    seconds: float = 0.0
    finished_at: int = 0  # epoch ms
    event_published: bool | None = None
    event_error: str | None = None
    # What kept the event from being published: Redis (its entries could not be read back
    # to build it) or the broker (it was built but not delivered).
    event_failed_on: Literal["redis", "broker"] | None = None
    # The change is live but this report (a replacement's: its event's outcome) was not
    # kept.
    report_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "source": self.source.value,
            "mode": self.mode,
            "file": self.file,
            "ok": self.ok,
            "error": self.error,
            "version": self.version,
            "previous_version": self.previous_version,
            "entries": self.entries,
            "skipped_expired": self.skipped_expired,
            "added": self.added,
            "upserted": self.upserted,
            "removed": self.removed,
            "index_depth": self.index_depth,
            "seconds": round(self.seconds, 3),
            "finished_at": self.finished_at,
            "event_published": self.event_published,
            "event_error": self.event_error,
            "event_failed_on": self.event_failed_on,
            **self.stats.as_dict(),
            # An upsert-mode (NCMEC) import's cancellations, by name: kept with its report
            # so that `alpr hotlist republish` can announce them when its event was not
            # published (the alerts are gone from the store, nothing else names them).
            **({"removed_entries": [{"plate": p, "entry_id": i}
                                    for p, i in self.extra.get("removed_entries", [])]}
               if self.mode == "upsert" else {}),
        }


class ImportFailedError(RuntimeError):
    """The import did not change the list; `report` says what was read and why not."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.error or "import failed")
        self.report = report


class ImportOutcomeUnknownError(RuntimeError):
    """Redis failed during the switch-over and could not be asked after: the new version
    (`report.version`) may or may not be serving; `alpr hotlist status` tells, once
    Redis answers."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(report.error or "import outcome unknown")
        self.report = report


@dataclass(frozen=True, slots=True)
class AlertChange:
    """One change an upsert-mode import makes: an alert added, or one cancelled."""

    kind: Literal["add", "cancel"]
    entry_id: str
    plate: str

    def __str__(self) -> str:
        return self.entry_id if self.kind == "add" else f"cancel {self.entry_id}"


class _AlertsCutOff:
    """Where an upsert-mode (NCMEC) import stopped, its alerts going live one by one (no
    switch-over): `applied` are live (added, or cancelled), `in_doubt` was sent but not
    confirmed, so it may or may not be (None: none was), `not_applied` never took effect.
    `complete`: every change was applied. No hotlist-update event was published. Importing
    the same file again completes it: a re-sent alert replaces itself, a repeated
    cancellation does nothing, and its event names every alert."""

    report: ImportReport
    applied: list[AlertChange]
    in_doubt: AlertChange | None
    not_applied: list[AlertChange]

    def _cut_off(self, report: ImportReport, changes: list[AlertChange], done: int,
                 in_doubt: bool) -> None:
        """`done` of `changes` applied; with `in_doubt`, the next one was perhaps sent."""
        self.report = report
        doubt = in_doubt and done < len(changes)
        self.applied = changes[:done]
        self.in_doubt = changes[done] if doubt else None
        self.not_applied = changes[done + doubt :]

    @property
    def complete(self) -> bool:
        return self.in_doubt is None and not self.not_applied


class ImportPartialError(_AlertsCutOff, ImportOutcomeUnknownError):
    """Redis failed part-way through an upsert-mode (NCMEC) import (see _AlertsCutOff).
    `complete`: only reading the list back for the report and its event failed. Import
    the same file again once Redis answers."""

    def __init__(self, report: ImportReport, changes: list[AlertChange], done: int,
                 *, lost_reply: bool) -> None:
        ImportOutcomeUnknownError.__init__(self, report)
        # A lost reply may hide a change that ran (a hung Redis runs it once thawed).
        self._cut_off(report, changes, done, lost_reply)


class ImportInterruptedError(_AlertsCutOff, KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, which the CLI turns into one) once an upsert-mode (NCMEC)
    import had sent its first change (see _AlertsCutOff): the change in flight may or may
    not have run. `complete`: every change was applied, the interrupt came after (reading
    the list back, or publishing its event: not confirmed). Still a KeyboardInterrupt, so
    whatever stops on one stops on it."""

    def __init__(self, report: ImportReport, changes: list[AlertChange], done: int) -> None:
        KeyboardInterrupt.__init__(self, "import interrupted")
        self._cut_off(report, changes, done, True)


class Importer:
    """Imports hotlist files into a store and announces them.

    publisher: where hotlist-update events go (None: no events, e.g. offline use).
    """

    def __init__(
        self,
        store: HotlistStore,
        *,
        publisher: UpdatePublisher | None = None,
        max_bad_share: float = DEFAULT_MAX_BAD_SHARE,
        max_shrink: float = DEFAULT_MAX_SHRINK,
        tz: tzinfo = UTC,
    ) -> None:
        if not 0 <= max_bad_share <= 1 or not 0 <= max_shrink <= 1:
            raise ValueError("max_bad_share and max_shrink are shares between 0 and 1")
        self.store = store
        self.publisher = publisher
        self.max_bad_share = max_bad_share
        self.max_shrink = max_shrink
        self.tz = tz

    def import_file(
        self,
        fmt: str | Format,
        path: str | Path,
        *,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Import one file; `progress(n)` is told every n characters read."""
        f = get_format(fmt) if isinstance(fmt, str) else fmt
        path = Path(path)
        errors = "strict" if f.encoding == "latin-1" else "surrogateescape"
        with open(path, encoding=f.encoding, errors=errors, newline="") as handle:
            lines: Iterable[str] = handle if progress is None else _counted(handle, progress)
            return self.import_lines(f, lines, name=str(path), force=force)

    def import_lines(
        self,
        fmt: str | Format,
        lines: Iterable[str],
        *,
        name: str | None = None,
        force: bool = False,
    ) -> ImportReport:
        """Import already-decoded lines (what import_file does after opening the file).

        Raises ImportFailedError (with the report) when nothing changed, and
        ImportOutcomeUnknownError when Redis failed during the switch-over."""
        f = get_format(fmt) if isinstance(fmt, str) else fmt
        stats = ImportStats()
        report = ImportReport(f.name, f.source, f.mode, name, stats)
        started = time.monotonic()
        try:
            entries = f.parse(lines, stats, self.tz)
            if f.mode == "replace":
                self._replace(f, entries, report, force, started)
            else:
                self._upsert(f, entries, report)
        except (ImportPartialError, ImportInterruptedError):
            report.seconds = time.monotonic() - started
            report.finished_at = _now_ms()
            # No attempt recorded: Redis is failing, and neither "failed" nor "ok" is true.
            raise
        except SwitchOverUnknownError as exc:
            report.version = exc.version
            report.error = f"{type(exc).__name__}: {exc}"
            report.seconds = time.monotonic() - started
            report.finished_at = _now_ms()
            # No attempt recorded: Redis is unreachable, and "failed" may be untrue.
            raise ImportOutcomeUnknownError(report) from exc
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            report.seconds = time.monotonic() - started
            report.finished_at = _now_ms()
            self._keep_attempt(report)
            # Debug only: the caller reports the failure it gets (the CLI's one error
            # line, the watcher's log line), so it is never said twice.
            log.debug("hotlist import of %s (%s) failed: %s", name or "-", f.name, report.error)
            raise ImportFailedError(report) from exc
        try:
            report.ok = True
            report.seconds = time.monotonic() - started
            if not report.finished_at:  # a replacement's is its switch-over's (_replace)
                report.finished_at = _now_ms()
            self._announce(report)
            self._keep_report(report)
        except KeyboardInterrupt:
            changes = report.extra.get("changes")
            if changes is None:  # a replacement: it is live, as its summary would say
                raise
            # Every alert is live; its event may or may not have gone out.
            raise ImportInterruptedError(report, changes, len(changes)) from None
        return report

    # --- the two modes --------------------------------------------------------------

    def _replace(
        self,
        f: Format,
        entries: Iterator[HotlistEntry],
        report: ImportReport,
        force: bool,
        started: float,
    ) -> None:
        serving = self.store.status().get(f.source)
        serving_entries = serving.entries if serving and serving.version is not None else 0
        checked = self._checked(entries, report.stats, serving_entries, force)
        live_at: list[int] = []

        def switch_over(written: ImportResult) -> dict[str, Any]:
            # The report as it will be once this version is live, saved by the switch-over
            # itself (which adds `previous_version` and `added`): status never shows the
            # version without it. `report` itself stays a failure's until the flip ran.
            if written.refused:  # the store's own guard caught what the parser did not
                report.stats.refused["immigration"] += written.refused
            live_at.append(_now_ms())
            return replace(
                report, ok=True, version=written.version, entries=written.entries,
                skipped_expired=written.skipped_expired, index_depth=written.index_depth,
                seconds=time.monotonic() - started, finished_at=live_at[-1],
            ).as_dict()

        result: ImportResult = self.store.replace_source(
            f.source, checked, allow_empty=force, report=switch_over
        )
        report.version = result.version
        report.previous_version = result.previous_version
        report.entries = result.entries
        report.skipped_expired = result.skipped_expired
        report.added = result.added
        report.index_depth = result.index_depth
        report.finished_at = live_at[-1]  # as saved, and as the event will say

    def _checked(
        self,
        entries: Iterator[HotlistEntry],
        stats: ImportStats,
        serving_entries: int,
        force: bool,
    ) -> Iterator[HotlistEntry]:
        """The entries, then the whole-file checks: raising here, after the last entry
        but before the store flips, abandons the new version."""
        yield from entries
        self._check_bad_share(stats)
        if (
            not force
            and serving_entries >= _SHRINK_MIN_ENTRIES
            and stats.accepted < serving_entries * (1 - self.max_shrink)
        ):
            raise ListShrinkError(
                f"{stats.accepted} entries would replace {serving_entries}: more than "
                f"{self.max_shrink:.0%} fewer, the file looks truncated (use --force)"
            )

    def _check_bad_share(self, stats: ImportStats) -> None:
        if stats.rows and stats.bad_share > self.max_bad_share:
            raise TooManyBadRowsError(
                f"{stats.rejected_total} of {stats.rows} rows malformed "
                f"({stats.bad_share:.1%} > {self.max_bad_share:.1%}): the serving list is "
                "kept"
            )

    def _upsert(self, f: Format, entries: Iterator[HotlistEntry], report: ImportReport) -> None:
        """Urgent single entries: all-or-nothing validation, then one upsert each (and
        one removal per cancellation), each live at once. Redis failing once any change
        was sent raises ImportPartialError: what is live, what may be, what is not.
        `removed` (report and event) is every cancellation of the file, as `upserted`
        is every alert: a re-run after a cut-off one announces all that the first would
        have."""
        batch = list(entries)
        stats = report.stats
        self._check_bad_share(stats)
        now = _now_ms()
        live = [e for e in batch if e.expires_at is None or e.expires_at >= now]
        report.skipped_expired = len(batch) - len(live)
        if not live and not stats.removals:
            raise ValueError("no live entry and no cancellation in the file: nothing to do")
        changes = [AlertChange("add", e.entry_id, e.plate) for e in live]
        changes += [AlertChange("cancel", i, p) for p, i in stats.removals]
        upserted: list[HotlistEntry] = []
        removed: list[tuple[str, str]] = []
        report.extra["upserted_entries"] = upserted
        report.extra["removed_entries"] = removed
        # Nothing is sent before this answers: a Redis already down or hung is a failed
        # import that changed nothing, as for the other formats (and an interrupt before
        # it, a plain KeyboardInterrupt: nothing changed either).
        self.store.redis.ping()
        # Changes applied (confirmed by Redis) are the two lists' entries, counted from
        # them when cut off: a separate counter, bumped after the append, could be one
        # behind when Ctrl-C lands between the two, and the alert said added would also
        # be named as the one in doubt.
        try:
            for entry in live:
                self.store.upsert(entry)
                upserted.append(entry)
            for plate, entry_id in stats.removals:
                # Announced whether or not it was still serving: a cut-off run of this
                # file may have cancelled it without announcing it (no event), and its
                # re-run's event must, as the first run's would have. Consumers drop
                # what they hold; a cancelled alert they never had changes nothing.
                self.store.remove(f.source, entry_id, plate)
                removed.append((plate, entry_id))
            self._count(report, upserted, removed)
            status = self.store.status().get(f.source)
        except Exception as exc:
            lost_reply = isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
            done = len(upserted) + len(removed)
            if done == 0 and not lost_reply:
                raise  # the first change was refused: nothing changed
            self._count(report, upserted, removed)
            report.error = f"{type(exc).__name__}: {exc}"
            raise ImportPartialError(report, changes, done, lost_reply=lost_reply) from exc
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: what is live is said, as for Redis failing. The change
            # in flight (sent, or about to be) may or may not have run.
            self._count(report, upserted, removed)
            report.error = "interrupted"
            raise ImportInterruptedError(report, changes, len(upserted) + len(removed)) from None
        report.extra["changes"] = changes
        report.version = status.version if status else None
        report.entries = status.entries if status else 0

    @staticmethod
    def _count(report: ImportReport, upserted: list[HotlistEntry],
               removed: list[tuple[str, str]]) -> None:
        report.upserted = len(upserted)
        report.removed = len(removed)
        report.added = len(upserted)

    # --- outcome --------------------------------------------------------------------

    def _announce(self, report: ImportReport) -> None:
        """Publish the change's event; a failure is the report's (event_published False,
        event_error, event_failed_on), said by the caller, which knows what the operator
        should do (the CLI's line, the watcher's): logged here at debug only, so it is
        never said twice."""
        if self.publisher is None:
            return
        try:
            self.publisher.publish(update_event(self.store, report))
            report.event_published = True
        except redis.RedisError as exc:  # reading the entries back: the broker is not at fault
            report.event_published = False
            report.event_error = f"{type(exc).__name__}: {exc}"
            report.event_failed_on = "redis"
            log.debug("hotlist %s: version %s is live but its update event was not "
                      "published: Redis failed reading its entries back", report.source,
                      report.version, exc_info=True)
        except Exception as exc:  # EventPublishError or a broker failure: the change is live
            report.event_published = False
            report.event_error = f"{type(exc).__name__}: {exc}"
            report.event_failed_on = "broker"
            log.debug("hotlist %s: update event not published: %s", report.source, exc)

    def _keep_report(self, report: ImportReport) -> None:
        """Keep a live change's report for status as the latest attempt. A replacement's
        was saved by its switch-over already (with its version too): it is saved again
        only to add its event's outcome. The change is live whatever happens here, so a
        failure is a warning and `report_error`, never the import's outcome."""
        swapped = report.version is not None and report.mode == "replace"
        if swapped and report.event_published is None:
            return  # no event: the switch-over saved the whole report
        try:
            if swapped:
                self.store.record_report(report.source, report.version, report.as_dict())
            self.store.record_attempt(report.source, report.as_dict())
        except Exception as exc:  # Redis gone after the switch-over, most likely
            report.report_error = f"{type(exc).__name__}: {exc}"
            if swapped:
                log.warning("hotlist %s: version %s is live and its import report saved; "
                            "only its hotlist-update event's outcome could not be added to "
                            "it", report.source, report.version, exc_info=True)
            else:
                log.warning("hotlist %s: the change is live; only its import report could "
                            "not be saved (alpr hotlist status shows no report for it)",
                            report.source, exc_info=True)

    def _keep_attempt(self, report: ImportReport) -> None:
        try:
            self.store.record_attempt(report.source, report.as_dict())
        except Exception:  # status is informational: never hide the import's outcome
            log.warning("hotlist %s: could not record the import attempt", report.source,
                        exc_info=True)


def update_event(store: HotlistStore, report: ImportReport) -> HotlistUpdate:
    """The hotlist-update event announcing a live change (a new event id each call).

    Upserts carry their entries. An import carries the plates new since the previous
    version, or every entry when there was none (`added_all`), read back from the store;
    more than INLINE_ADDED_LIMIT (or an uncounted set) become `added_truncated` and
    consumers read them from the store. Shared by the importer and `alpr hotlist
    republish` (hotlists.republish), so a republished event is the one the import sent.
    """
    stats = report.stats
    added: list[HotlistEntry] | None = None
    added_all = truncated = False
    if report.mode == "upsert":
        added = list(report.extra.get("upserted_entries", []))
    elif report.version is not None:
        if report.previous_version is None:
            added_all = True
            if report.entries <= INLINE_ADDED_LIMIT:
                added = list(store.iter_entries(report.source))
            else:
                truncated = True
        elif report.added is not None and report.added <= INLINE_ADDED_LIMIT:
            added = store.added_entries(report.source, report.version)
        else:
            truncated = True
    return HotlistUpdate(
        event_id=new_event_id(),
        action="upsert" if report.mode == "upsert" else "import",
        source=report.source,
        version=report.version,
        entries=report.entries,
        imported_at=report.finished_at,
        file=report.file,
        rows=stats.rows,
        rejected=stats.rejected_total,
        rejected_by_code=dict(stats.rejected),
        refused=stats.refused_total,
        refused_by_reason=dict(stats.refused),
        skipped_expired=report.skipped_expired,
        added=added,
        added_count=report.entries if added_all else report.added,
        added_all=added_all,
        added_truncated=truncated,
        removed=[
            {"plate": p, "entry_id": i} for p, i in report.extra.get("removed_entries", [])
        ],
    )


def _counted(lines: Iterable[str], progress: Callable[[int], None]) -> Iterator[str]:
    size = count = 0
    for line in lines:
        size += len(line)
        count += 1
        if count == _PROGRESS_EVERY:
            progress(size)
            size = count = 0
        yield line
    if size:
        progress(size)


def _now_ms() -> int:
    return int(time.time() * 1000)
