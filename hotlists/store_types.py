"""What the hotlist store raises and returns: its errors, an import's result and a
source's status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hotlists.import_lock import ImportLock
from kernel.contracts import HotlistSource

__all__ = [
    "EmptyHotlistError",
    "ImportInProgressError",
    "ImportLockLostError",
    "ImportResult",
    "RefusedEntryError",
    "SourceStatus",
    "SwitchOverUnknownError",
]


class EmptyHotlistError(ValueError):
    """An import with no (live) entries: refused unless allow_empty=True, because an
    empty file far more often means a broken feed than an empty list."""


class ImportInProgressError(RuntimeError):
    """Another import of the same source holds the lock."""


class ImportLockLostError(RuntimeError):
    """The import lock expired (its heartbeat could not reach Redis for lock_ttl) or was
    taken over: this import is abandoned, the old version keeps serving."""


class RefusedEntryError(ValueError):
    """The entry is of a kind this system never stores (immigration enforcement)."""


class SwitchOverUnknownError(RuntimeError):
    """The switch-over was sent but its reply lost, and Redis could not be asked after:
    `version` may or may not be serving (the cause, a redis error, says why)."""

    def __init__(self, source: HotlistSource, version: int) -> None:
        super().__init__(f"the switch-over of {source} to version {version} was sent but "
                         "not confirmed, and Redis could not be asked whether it ran")
        self.source = source
        self.version = version


@dataclass(frozen=True, slots=True)
class ImportResult:
    source: HotlistSource
    version: int
    entries: int  # distinct (plate, entry_id) pairs now serving
    received: int  # entries read from the iterable
    skipped_expired: int  # already expired at import time: never stored
    previous_version: int | None
    seconds: float
    refused: int = 0  # immigration-related: never stored
    # Plates new since the previous version; None: no previous version, or not counted
    # (Redis failed after the switch-over).
    added: int | None = None
    index_depth: int = 0  # deepest misread index built (0: exact/equivalence only)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: HotlistSource
    version: int | None
    entries: int
    imported_at: int | None  # epoch ms when the version went live
    updated_at: int | None  # epoch ms of the last upsert/remove, if any
    importing: bool  # an import holds the lock and refreshes it: it is running right now
    index_depth: int = 0  # misread index depth the version was built with
    report: dict[str, Any] | None = None  # the import report of the serving version
    last_attempt: dict[str, Any] | None = None  # outcome of the latest import try
    import_lock: ImportLock | None = None  # the lock's holder, live or stale
    # A version an import began but never finished (it is not served; the next import
    # deletes it), when no live import is writing it.
    cut_off_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "version": self.version,
            "entries": self.entries,
            "imported_at": self.imported_at,
            "updated_at": self.updated_at,
            "importing": self.importing,
            "index_depth": self.index_depth,
            "report": self.report,
            "last_attempt": self.last_attempt,
            "import_lock": self.import_lock.as_dict() if self.import_lock else None,
            "cut_off_version": self.cut_off_version,
        }
