"""Hotlists: the Redis store (versioned, atomically swapped per source), the importers,
and misread-tolerant matching."""

from hotlists.store import (
    EmptyHotlistError,
    HotlistStore,
    ImportInProgressError,
    ImportLockLostError,
    ImportResult,
    RefusedEntryError,
    SourceStatus,
    normalise_plate,
)

__all__ = [
    "EmptyHotlistError",
    "HotlistStore",
    "ImportInProgressError",
    "ImportLockLostError",
    "ImportResult",
    "RefusedEntryError",
    "SourceStatus",
    "normalise_plate",
]
