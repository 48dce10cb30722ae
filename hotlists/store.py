"""Hotlists in Redis: versioned per source, swapped atomically, looked up in one trip.

Key layout (every key of a version lives under its version prefix, so a version is
deleted as a unit, index included):

    alpr:hl:sources                          SET    sources that have data
    alpr:hl:{source}:active                  STRING version serving lookups
    alpr:hl:{source}:pending                 STRING version being imported (if any)
    alpr:hl:{source}:next                    STRING version counter (INCR)
    alpr:hl:{source}:versions                SET    versions with keys in Redis
    alpr:hl:{source}:lock                    STRING import lock (JSON: token, holder's host
                                                    and pid, ttl; PX ttl, kept by a heartbeat)
    alpr:hl:{source}:last_attempt            STRING JSON outcome of the last import try
                                                    (the switch-over sets it to the
                                                    import's report, or to a placeholder,
                                                    `report_missing`, if given none)
    alpr:hl:{source}:v{N}:meta               HASH   count, state, layout, depth,
                                                    started_at, imported_at, updated_at
                                                    (epoch ms), report (import JSON)
    alpr:hl:{source}:v{N}:entries            HASH   canonical plate -> entry records
    alpr:hl:{source}:v{N}:fuzzy              HASH   index key -> canonical plates
    alpr:hl:{source}:v{N}:added              SET    plates new since the previous version

`entries` is keyed by the plate's canonical form (hotlists.plates: every OCR look-alike
mapped to one representative), so an exact or OCR-equivalent read is one field lookup.
A record is the entry's JSON without its source (implied by the key); several records
of one canonical plate are '\n'-separated. `fuzzy` indexes only entries whose policy
allows extra differing characters (hotlists.match_policy): each of their index keys
(hotlists.plates.index_keys: wildcard patterns, end-trimmed forms and, at depth 1, the two
halves that gate the one-wildcard probes from layout 3 on) points at their canonical
plate. One hash per version
instead of a key per plate: a million entries cost a million hash fields, not a million
Redis keys, and a batch of reads is one HMGET per source.

An import (`replace_source`) takes the source's lock, writes a new version with
non-transactional pipelines, flips `active` in one Lua script that also saves the
import's report, then UNLINKs the old version. The lock names its holder and has a
short TTL that a heartbeat thread refreshes while the import lives: a second import of
the source is refused however slowly the first runs, and the lock of an importer that
was killed or cut off from Redis frees itself within lock_ttl (10 s) of its last
heartbeat. Lookups run as one Lua script reading `active` then the hashes, so they see
either the whole old list or the whole new one. Urgent single entries (`upsert`) go
into the active version and, while an import runs, into the pending one as well, so they
survive the flip.

Targets a standalone Redis: scripts build keys from ARGV, which Redis Cluster forbids.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from itertools import chain
from typing import Any

import redis
from pydantic import ValidationError

from hotlists.categories import entry_refusal
from hotlists.import_lock import ImportLock, LockHeartbeat, lock_of, reply_text
from hotlists.match_policy import MAX_EXTRA_LIMIT, SourcePolicy, load_policies
from hotlists.plates import canonical, index_keys, normalise_plate
from hotlists.store_types import (
    EmptyHotlistError,
    ImportInProgressError,
    ImportLockLostError,
    ImportResult,
    RefusedEntryError,
    SourceStatus,
    SwitchOverUnknownError,
)
from kernel.contracts import HotlistEntry, HotlistSource

__all__ = [
    "KEY_PREFIX",
    "EmptyHotlistError",
    "HotlistStore",
    "ImportInProgressError",
    "ImportLock",
    "ImportLockLostError",
    "ImportResult",
    "RefusedEntryError",
    "SourceStatus",
    "SwitchOverUnknownError",
    "normalise_plate",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "alpr:hl:"
SOURCES_KEY = KEY_PREFIX + "sources"
# Entries per write-script call during an import (~1-2 ms of Redis time each).
_WRITE_CHUNK = 1000
# Marks versions written with this layout (older ones are swept by SCAN when deleted).
# 3: depth-1 entries are also indexed by their halves, and lookup.lua gates its
# one-wildcard probes on them; it probes every read's in versions of layout 2.
_LAYOUT = "3"
# Fields per HMGET when reading entries back (added_entries, iter_entries).
_READ_CHUNK = 2000
# Heartbeats per lock TTL: a live importer refreshes its lock every ttl/5 (2 s of 10 s).
_BEATS_PER_TTL = 5


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- Lua: the scripts live in hotlists/lua/ (shipped as package data) ------------------


def _lua(name: str, *, helpers: bool = False) -> str:
    """The text of hotlists/lua/`name`; `helpers` puts the record helpers the write
    scripts share (helpers.lua: put, drop, link, unlink, raise_depth) in front."""
    text = resources.files("hotlists").joinpath("lua", name).read_text()
    return _lua("helpers.lua") + text if helpers else text


_BEGIN = _lua("import_begin.lua")
_FLIP = _lua("import_flip.lua")
_ABORT = _lua("import_abort.lua")
_WRITE = _lua("import_write.lua", helpers=True)
_WRITE_INDEX = _lua("import_write_index.lua", helpers=True)
_UNLINK_VERSION = _lua("version_unlink.lua")
_DELETE_STEP = _lua("version_delete_step.lua")
_RELEASE_LOCK = _lua("lock_release.lua")
_REFRESH_LOCK = _lua("lock_refresh.lua")
_UPSERT = _lua("live_upsert.lua", helpers=True)
_REMOVE = _lua("live_remove.lua", helpers=True)


class _Keys:
    """Key names of one source."""

    def __init__(self, source: HotlistSource) -> None:
        self.source = source
        self.prefix = f"{KEY_PREFIX}{source.value}:"
        self.active = self.prefix + "active"
        self.pending = self.prefix + "pending"
        self.next = self.prefix + "next"
        self.versions = self.prefix + "versions"
        self.lock = self.prefix + "lock"
        self.last_attempt = self.prefix + "last_attempt"

    def version_prefix(self, version: int | str) -> str:
        return f"{self.prefix}v{version}:"

    def meta(self, version: int | str) -> str:
        return self.version_prefix(version) + "meta"

    def entries(self, version: int | str) -> str:
        return self.version_prefix(version) + "entries"

    def fuzzy(self, version: int | str) -> str:
        return self.version_prefix(version) + "fuzzy"

    def added(self, version: int | str) -> str:
        return self.version_prefix(version) + "added"


class HotlistStore:
    """Hotlists of all sources in one Redis (see the module docstring for the layout).

    `policies` (default: hotlists.match_policy.load_policies()) decide which entries get a
    misread index at write time; matching itself is hotlists.matching.

    Thread-safe as far as the redis client is (redis.Redis with its pool is).
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        policies: Mapping[HotlistSource, SourcePolicy] | None = None,
        lock_ttl_s: float = 10.0,
        delete_scan_count: int = 2000,
    ) -> None:
        self.redis = redis_client
        self.policies: dict[HotlistSource, SourcePolicy] = dict(
            policies if policies is not None else load_policies()
        )
        # Refreshed by a heartbeat every ttl/5 while the import runs: an importer that
        # dies or loses Redis frees the source this long after its last heartbeat.
        self.lock_ttl_ms = int(lock_ttl_s * 1000)
        # Keyspace slots examined per sweep step of an old-layout version.
        self.delete_scan_count = delete_scan_count
        r = redis_client
        self._lookup = r.register_script(_lua("lookup.lua"))
        self._begin = r.register_script(_BEGIN)
        self._flip = r.register_script(_FLIP)
        self._abort = r.register_script(_ABORT)
        self._write = r.register_script(_WRITE)
        self._write_index = r.register_script(_WRITE_INDEX)
        self._unlink_version = r.register_script(_UNLINK_VERSION)
        self._delete_step = r.register_script(_DELETE_STEP)
        self._release_lock = r.register_script(_RELEASE_LOCK)
        self._refresh_lock = r.register_script(_REFRESH_LOCK)
        self._upsert = r.register_script(_UPSERT)
        self._remove = r.register_script(_REMOVE)

    def policy(self, source: HotlistSource) -> SourcePolicy:
        return self.policies.get(source) or SourcePolicy()

    @property
    def max_depth(self) -> int:
        """Deepest misread index any policy asks for (what lookups search)."""
        return max(
            (max(p.max_extra, p.urgent_max_extra) for p in self.policies.values()), default=0
        )

    # --- imports -------------------------------------------------------------------

    def replace_source(
        self,
        source: HotlistSource | str,
        entries: Iterable[HotlistEntry],
        *,
        allow_empty: bool = False,
        batch: int = 5000,
        now_ms: int | None = None,
        report: Callable[[ImportResult], Mapping[str, Any]] | None = None,
    ) -> ImportResult:
        """Replace every entry of `source` with `entries`, atomically for lookups.

        Entries must belong to `source`; plates are normalised; entries already expired
        are skipped, immigration-related ones refused (both counted). An empty list
        raises EmptyHotlistError unless allow_empty. If anything fails (including the
        iterable raising, which is how a caller aborts after validating the whole feed)
        the old version keeps serving, the partial version is deleted and the error
        propagates. Raises ImportInProgressError while another import holds the source's
        lock (a live one, or a stale one until it expires).

        `report(written)`, called once every entry is written and just before the
        switch-over, returns the import's report (a JSON-able mapping): the switch-over
        saves it with the version and as the last attempt in the same atomic step,
        adding `previous_version` and `added` (what `written` cannot know yet: there they
        are the version serving when the import began and None). Without it the last
        attempt is a placeholder, `report_missing`, and status shows no report.
        """
        started = time.monotonic()
        src = HotlistSource(source)
        keys = _Keys(src)
        now = _now_ms() if now_ms is None else now_ms
        it = iter(entries)
        first = next(it, None)
        if first is None and not allow_empty:
            raise EmptyHotlistError(f"refusing to replace {src} with an empty list")
        stream = iter(()) if first is None else chain((first,), it)

        token = self._lock_token()
        try:
            begun = self._begin(
                keys=[keys.active, keys.pending, keys.next, keys.versions, keys.lock],
                args=[token, self.lock_ttl_ms, keys.prefix, now, _LAYOUT],
            )
        except redis.RedisError:
            # Perhaps only the reply was lost: free the lock if this import took it.
            self._release(keys, token)
            raise
        version = int(begun[0])
        if version == 0:
            raise ImportInProgressError(self._refusal(src))
        active_before = int(begun[1]) or None
        heartbeat = LockHeartbeat(
            lambda: self._refresh_lock(keys=[keys.lock], args=[token, self.lock_ttl_ms]),
            every_s=self.lock_ttl_ms / 1000 / _BEATS_PER_TTL,
            name=f"hotlist-lock-{src.value}",
        )
        try:
            stats, previous, added = self._write_and_flip(
                keys, version, token, stream, [int(v) for v in begun[2:]],
                batch=batch, now=now, active_before=active_before, allow_empty=allow_empty,
                report=report, started=started,
            )
            added = self._retire(keys, version, previous, added)
        finally:
            heartbeat.stop()
            self._release(keys, token)
        result = ImportResult(
            source=src,
            version=version,
            entries=stats.stored,
            received=stats.received,
            skipped_expired=stats.expired,
            previous_version=previous,
            seconds=time.monotonic() - started,
            refused=stats.refused,
            added=added,
            index_depth=stats.depth,
        )
        log.info(
            "hotlist %s v%d live: %d entries (%d expired skipped, %d refused) in %.1f s",
            src,
            version,
            stats.stored,
            stats.expired,
            stats.refused,
            result.seconds,
        )
        return result

    def _write_and_flip(
        self,
        keys: _Keys,
        version: int,
        token: str,
        stream: Iterator[HotlistEntry],
        stale_versions: list[int],
        *,
        batch: int,
        now: int,
        active_before: int | None,
        allow_empty: bool,
        report: Callable[[ImportResult], Mapping[str, Any]] | None,
        started: float,
    ) -> tuple[_WriteStats, int | None, int | None]:
        """Write `version` and make it serve (saving `report`'s report in the same
        step); returns its stats, the version it replaced and the plates new since (None:
        no previous version, or not known). If anything fails the old version keeps
        serving, `version` is deleted and the error propagates."""
        src = keys.source
        flip_sent = False
        try:
            for stale in stale_versions:
                # Left by an importer that crashed: nobody writes there any more.
                self._delete_version(keys, stale)
            stats = self._write_version(keys, version, stream, token, batch, now, active_before)
            if stats.stored == 0 and not allow_empty:
                raise EmptyHotlistError(
                    f"refusing to replace {src}: none of the {stats.received} entries is "
                    f"live ({stats.expired} expired, {stats.refused} refused)"
                )
            flipped_at = _now_ms()
            if report is None:
                saved: dict[str, Any] = {"source": src.value, "ok": True, "version": version,
                                         "finished_at": flipped_at, "report_missing": True}
            else:
                written = ImportResult(
                    source=src, version=version, entries=stats.stored,
                    received=stats.received, skipped_expired=stats.expired,
                    previous_version=active_before, seconds=time.monotonic() - started,
                    refused=stats.refused, index_depth=stats.depth,
                )
                saved = dict(report(written))
            # The flip writes these two itself, after the rest (see _FLIP).
            saved.pop("previous_version", None)
            saved.pop("added", None)
            flip_sent = True  # from here on a lost reply may hide a flip that ran
            try:
                old, added = self._flip(
                    keys=[keys.active, keys.pending, keys.lock, SOURCES_KEY, keys.versions,
                          keys.last_attempt],
                    args=[token, version, src.value, keys.prefix, flipped_at,
                          json.dumps(saved, default=str), int(report is not None)],
                )
            except redis.ResponseError as exc:
                if "ALPR_LOCK_LOST" in str(exc):
                    raise ImportLockLostError(str(exc)) from exc
                raise
        except BaseException as exc:
            abandoned = self._abandon(keys, version)
            lost_reply = isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
            if abandoned is None and flip_sent and lost_reply:
                # Never "unchanged" when it is not known: the flip may have run.
                raise SwitchOverUnknownError(src, version) from exc
            if abandoned is not False or not isinstance(exc, redis.RedisError):
                raise
            # Only the flip's reply was lost: the import succeeded. It replaced the version
            # active at the start (the lock kept other imports from flipping meanwhile).
            return stats, active_before, None
        return stats, int(old) or None, int(added) if int(added) >= 0 else None

    def _retire(
        self, keys: _Keys, version: int, previous: int | None, added: int | None
    ) -> int | None:
        """After the switch-over: delete the replaced version; returns the plates new in
        `version` (`added`, the switch-over's count, or counted here if its reply was
        lost; None: no previous version, or not counted). Best effort: the new list is
        live whatever fails here, and the next import sweeps an old version up."""
        if previous is None:
            return None
        try:
            self._delete_version(keys, previous)
        except redis.RedisError:
            log.warning("hotlist %s: could not delete old version %s (version %s is live)",
                        keys.source, previous, version, exc_info=True)
            return added  # Redis is failing: no count either, rather than a second timeout
        if added is not None:
            return added
        try:
            return int(self.redis.scard(keys.added(version)))
        except redis.RedisError:
            log.warning("hotlist %s: could not count the new plates of version %s (it is "
                        "live)", keys.source, version, exc_info=True)
            return None

    def _write_version(
        self,
        keys: _Keys,
        version: int,
        entries: Iterator[HotlistEntry],
        token: str,
        batch: int,
        now: int,
        previous: int | None,
    ) -> _WriteStats:
        """Write entries in pipelined batches.

        `stored` is the version's final count: distinct (plate, entry_id) pairs, including
        upserts that landed in the pending version meanwhile."""
        stats = _WriteStats()
        script_keys = [
            keys.lock,
            keys.pending,
            keys.meta(version),
            keys.entries(version),
            keys.added(version),
        ]
        old_entries = keys.entries(previous) if previous is not None else ""
        policy = self.policy(keys.source)
        pipe = self.redis.pipeline(transaction=False)
        chunk: list[str] = []
        # Misread index of this batch, grouped by key (entries sharing a key are common:
        # a fleet of sequential plates shares its prefix).
        index: dict[str, dict[str, None]] = {}
        queued = 0

        def queue_chunk() -> None:
            self._write(
                keys=script_keys,
                args=[token, self.lock_ttl_ms, version, json.dumps(chunk), old_entries],
                client=pipe,
            )
            chunk.clear()

        def queue_index() -> None:
            items = [x for key, canons in index.items() for x in (key, ",".join(canons))]
            for i in range(0, len(items), 2 * _WRITE_CHUNK):
                self._write_index(
                    keys=[keys.lock, keys.pending, keys.meta(version), keys.fuzzy(version)],
                    args=[token, version, json.dumps(items[i : i + 2 * _WRITE_CHUNK]),
                          stats.depth],
                    client=pipe,
                )
            index.clear()

        # Redis writes one batch while the next is parsed: parsing (this process) and
        # writing (redis-server) then use both cores. One batch in flight at most.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotlist-write")
        inflight: Future[list[Any]] | None = None

        def wait() -> None:
            nonlocal inflight
            if inflight is not None:
                replies, inflight = inflight.result(), None
                if any(int(n) < 0 for n in replies):
                    raise ImportLockLostError(f"import lock of {keys.source} lost mid-import")

        def execute() -> None:
            nonlocal pipe, inflight
            wait()
            inflight = writer.submit(pipe.execute)
            pipe = self.redis.pipeline(transaction=False)

        try:
            for entry in entries:
                stats.received += 1
                if not isinstance(entry, HotlistEntry):
                    raise TypeError(f"expected HotlistEntry, got {type(entry).__name__}")
                if entry.source != keys.source:
                    raise ValueError(
                        f"entry {entry.entry_id} is from {entry.source}, importing {keys.source}"
                    )
                if entry.expires_at is not None and entry.expires_at < now:
                    stats.expired += 1
                    continue
                if _refused(entry):
                    stats.refused += 1
                    continue
                plate = _plate_of(entry)
                canon = canonical(plate)
                chunk += (canon, plate, entry.entry_id, _record(entry, plate))
                depth = policy.extra_for(entry.priority, len(plate))
                if depth:
                    stats.depth = max(stats.depth, depth)
                    for key in index_keys(canon, depth):
                        index.setdefault(key, {})[canon] = None
                queued += 1
                # Bounded script calls: each blocks lookups for ~1-2 ms at most.
                if len(chunk) >= 4 * _WRITE_CHUNK:
                    queue_chunk()
                if queued >= batch:
                    if chunk:
                        queue_chunk()
                    if index:
                        queue_index()
                    execute()
                    queued = 0
            if chunk:
                queue_chunk()
            if index:
                queue_index()
            if queued:
                execute()
            wait()
        finally:
            # Waits for a write still running: never one behind a version being abandoned
            # (its error, if any, is dropped: the caller's is the one to raise).
            writer.shutdown(wait=True)

        meta = self.redis.hmget(keys.meta(version), ["count", "depth"])
        stats.stored = int(meta[0] or 0)
        stats.depth = int(meta[1] or 0)
        return stats

    def _abandon(self, keys: _Keys, version: int) -> bool | None:
        """Undo a failed import; never masks the original error. True if the version is
        abandoned (never served); False if it turns out to be live (its flip ran): it is
        kept, never deleted under lookups; None if Redis could not be asked."""
        try:
            aborted = int(self._abort(keys=[keys.pending, keys.active], args=[version]))
        except redis.RedisError:
            log.warning("hotlist %s: could not clean up version %d (the next import sweeps "
                        "it up unless it serves)", keys.source, version, exc_info=True)
            return None
        if not aborted:
            log.warning("hotlist %s: version %d went live though its switch-over was "
                        "not confirmed; it keeps serving", keys.source, version)
            return False
        try:
            self._delete_version(keys, version)
        except redis.RedisError:
            log.warning(
                "hotlist %s: could not clean up failed version %d (swept up by the next import)",
                keys.source,
                version,
                exc_info=True,
            )
        return True

    def _release(self, keys: _Keys, token: str) -> None:
        """Free the lock if it is still this import's (best effort: when Redis cannot be
        reached it frees itself lock_ttl after the last heartbeat)."""
        try:
            self._release_lock(keys=[keys.lock], args=[token])
        except redis.RedisError:
            log.warning(
                "hotlist %s: could not release the import lock (it expires within %.0f s)",
                keys.source,
                self.lock_ttl_ms / 1000,
                exc_info=True,
            )

    def _lock_token(self) -> str:
        """The lock's value: unique per import, and naming its holder for status."""
        return json.dumps(
            {"token": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(),
             "started_at": _now_ms(), "ttl_ms": self.lock_ttl_ms},
            separators=(",", ":"),
        )

    def import_lock(self, source: HotlistSource | str) -> ImportLock | None:
        """Who holds the source's import lock, and whether it is stale; None if free."""
        keys = _Keys(HotlistSource(source))
        pipe = self.redis.pipeline()
        pipe.get(keys.lock)
        pipe.pttl(keys.lock)
        value, pttl = pipe.execute()
        return lock_of(value, pttl)

    def _refusal(self, src: HotlistSource) -> str:
        """Why an import was refused, naming the import that holds the lock."""
        try:
            lock = self.import_lock(src)
        except redis.RedisError:
            lock = None
        if lock is None:
            return f"an import of {src} is already running"
        if lock.stale:
            return f"the import lock of {src} is still taken: {lock.describe()}"
        return f"an import of {src} is already running: lock {lock.describe()}"

    def _delete_version(self, keys: _Keys, version: int) -> int:
        """Delete every key of a version; returns the number of keys deleted.

        Versions of this layout have four known keys (UNLINK: big hashes are freed in a
        background thread). Anything else (an older layout, stray keys) is swept by a
        bounded SCAN+UNLINK per round trip, so lookups keep running in between."""
        layout = self.redis.hget(keys.meta(version), "layout")
        deleted = int(self._unlink_version(args=[keys.version_prefix(version)]))
        if layout is None or reply_text(layout) != _LAYOUT:
            pattern = _glob_escape(keys.version_prefix(version)) + "*"
            cursor = "0"
            while True:
                cursor_raw, n = self._delete_step(args=[cursor, pattern, self.delete_scan_count])
                cursor, deleted = reply_text(cursor_raw), deleted + int(n)
                if cursor == "0":
                    break
        self.redis.srem(keys.versions, version)
        return deleted

    # --- single updates ------------------------------------------------------------

    def upsert(self, entry: HotlistEntry, *, now_ms: int | None = None) -> bool:
        """Add or replace one entry (e.g. an NCMEC Amber alert) in its source's active
        version, creating version 1 if the source has none. Returns True if it is new.

        While an import of the source runs, the entry also goes into the version being
        written, so it survives the flip. Raises RefusedEntryError for immigration
        records."""
        if _refused(entry):
            raise RefusedEntryError(
                f"entry {entry.entry_id}: immigration-related records are never stored"
            )
        keys = _Keys(entry.source)
        now = _now_ms() if now_ms is None else now_ms
        plate = _plate_of(entry)
        canon = canonical(plate)
        depth = self.policy(entry.source).extra_for(entry.priority, len(plate))
        index = ",".join(index_keys(canon, depth))
        added = self._upsert(
            keys=[SOURCES_KEY, keys.active, keys.pending, keys.next, keys.versions],
            args=[
                keys.prefix,
                entry.source.value,
                canon,
                plate,
                entry.entry_id,
                _record(entry, plate),
                index,
                depth,
                now,
                _LAYOUT,
            ],
        )
        return bool(added)

    def remove(self, source: HotlistSource | str, entry_id: str, plate: str) -> bool:
        """Remove one entry (from the active version and any import in progress).
        Returns True if it was serving."""
        keys = _Keys(HotlistSource(source))
        normal = normalise_plate(plate)
        canon = canonical(normal)
        # Every depth's keys: the entry may have been indexed under any of them.
        index = ",".join(
            dict.fromkeys(k for d in range(1, MAX_EXTRA_LIMIT + 1) for k in index_keys(canon, d))
        )
        removed = self._remove(
            keys=[keys.active, keys.pending],
            args=[keys.prefix, canon, normal, entry_id, index, _now_ms()],
        )
        return bool(removed)

    # --- reads ---------------------------------------------------------------------

    def candidates(
        self, keys: Sequence[str], depth: int, *, now_ms: int | None = None
    ) -> dict[str, list[HotlistEntry]]:
        """Live entries of every source that may match reads with these canonical keys.

        One round trip. Per key: entries with the same canonical plate, plus (depth >
        0, for sources whose version has a misread index) entries sharing an index key
        of depth <= `depth` with it (possibly within that many differences). Expired
        and not yet effective entries are dropped. Keys with no candidate are absent.
        Candidates still need hotlists.plates.compare: the index only narrows a million
        entries to a handful.
        """
        unique = [k for k in dict.fromkeys(keys) if k]
        if not unique:
            return {}
        return self.candidates_and_serving(unique, depth, now_ms=now_ms)[0]

    def candidates_and_serving(
        self, keys: Sequence[str], depth: int, *, now_ms: int | None = None
    ) -> tuple[dict[str, list[HotlistEntry]], frozenset[HotlistSource]]:
        """`candidates`, and the sources serving a non-empty version, seen in the same
        atomic step (a source missing from them found nothing because it is not there:
        a flushed or restarted-empty Redis, not a clean miss)."""
        unique = [k for k in dict.fromkeys(keys) if k]
        raw = self._lookup(keys=[SOURCES_KEY], args=[KEY_PREFIX, depth, ",".join(unique)])
        serving = frozenset(s for s in (_source(reply_text(x)) for x in raw[0]) if s)
        now = _now_ms() if now_ms is None else now_ms
        wanted = set(unique)
        out: dict[str, list[HotlistEntry]] = {}
        for source_raw, flat_records, flat_links in raw[1:]:
            try:
                source = HotlistSource(reply_text(source_raw))
            except ValueError:
                continue
            records = {reply_text(flat_records[i]): flat_records[i + 1]
                       for i in range(0, len(flat_records), 2)}
            links = {reply_text(flat_links[i]): reply_text(flat_links[i + 1]).split(",")
                     for i in range(0, len(flat_links), 2)}
            parsed: dict[str, list[HotlistEntry]] = {}
            for key in (wanted & records.keys()) | links.keys():
                canons = dict.fromkeys([key] if key in records else [])
                canons.update(dict.fromkeys(links.get(key, ())))
                for canon in canons:
                    if canon not in parsed:
                        parsed[canon] = _parse_records(source, records.get(canon), now)
                    if parsed[canon]:
                        out.setdefault(key, []).extend(parsed[canon])
        return out, serving

    def serving_sources(self) -> frozenset[HotlistSource]:
        """The sources serving a non-empty version now."""
        return self.candidates_and_serving([], 0)[1]

    def lookup_many(
        self, plates: Sequence[str], now_ms: int | None = None
    ) -> list[list[HotlistEntry]]:
        """Live entries of every source listing exactly each plate, in one round trip.

        Plates are normalised again (idempotent). Entries whose expires_at is before
        `now_ms` (default: now) are dropped. Each list is sorted by priority (1 first),
        then source and entry id. (Misread-tolerant matching: hotlists.matching.)
        """
        if not plates:
            return []
        normal = [normalise_plate(p) for p in plates]
        found = self.candidates([canonical(p) for p in normal], 0, now_ms=now_ms)
        out: list[list[HotlistEntry]] = []
        for plate in normal:
            hits = [e for e in found.get(canonical(plate), ()) if e.plate == plate]
            hits.sort(key=lambda e: (e.priority, e.source.value, e.entry_id))
            out.append(hits)
        return out

    def lookup(self, plate: str, now_ms: int | None = None) -> list[HotlistEntry]:
        """`lookup_many` for one plate."""
        return self.lookup_many([plate], now_ms)[0]

    def added_entries(
        self, source: HotlistSource | str, version: int, *, now_ms: int | None = None
    ) -> list[HotlistEntry] | None:
        """Entries of `version` whose plate the previous version did not list (for
        historical hits), or None when the version had no predecessor (everything is
        new: use iter_entries) or is gone."""
        keys = _Keys(HotlistSource(source))
        if not self.redis.exists(keys.meta(version)):
            return None
        plates = sorted(reply_text(p) for p in self.redis.smembers(keys.added(version)))
        if not plates and self.redis.hget(keys.meta(version), "state") is None:
            return None
        now = _now_ms() if now_ms is None else now_ms
        wanted = set(plates)
        canons = list(dict.fromkeys(canonical(p) for p in plates))
        out: list[HotlistEntry] = []
        for i in range(0, len(canons), _READ_CHUNK):
            part = canons[i : i + _READ_CHUNK]
            for value in self.redis.hmget(keys.entries(version), part):
                out += [e for e in _parse_records(keys.source, value, now) if e.plate in wanted]
        return out

    def iter_entries(
        self, source: HotlistSource | str, *, now_ms: int | None = None
    ) -> Iterator[HotlistEntry]:
        """Every live entry of the source's serving version (HSCAN: not atomic with
        imports; for exports, audits and the historical-hits backfill)."""
        keys = _Keys(HotlistSource(source))
        active = self.redis.get(keys.active)
        if active is None:
            return
        now = _now_ms() if now_ms is None else now_ms
        for _, value in self.redis.hscan_iter(keys.entries(reply_text(active)), count=_READ_CHUNK):
            yield from _parse_records(keys.source, value, now)

    # --- status and import reports --------------------------------------------------

    def record_report(
        self, source: HotlistSource | str, version: int, report: Mapping[str, Any]
    ) -> None:
        """Keep an import's report (rejections and why) with the version it made."""
        keys = _Keys(HotlistSource(source))
        self.redis.hset(keys.meta(version), "report", json.dumps(report, default=str))

    def record_attempt(self, source: HotlistSource | str, attempt: Mapping[str, Any]) -> None:
        """Keep the outcome of the latest import try (a failed one leaves the old version
        serving, and status must say so)."""
        keys = _Keys(HotlistSource(source))
        self.redis.set(keys.last_attempt, json.dumps(attempt, default=str))

    def status(self) -> dict[HotlistSource, SourceStatus]:
        """Serving version, entry count, import time and report of every source with
        data or with an import attempt."""
        names = {reply_text(s) for s in self.redis.smembers(SOURCES_KEY)}
        valid = {s.value for s in HotlistSource}
        pipe = self.redis.pipeline(transaction=False)
        for src in HotlistSource:
            pipe.exists(_Keys(src).last_attempt, _Keys(src).lock)
        # A source's first import shows too, even when it was cut off.
        tried = {s.value for s, n in zip(HotlistSource, pipe.execute(), strict=True) if n}
        known = [HotlistSource(s) for s in sorted(names | tried) if s in valid]
        for src in known:
            k = _Keys(src)
            pipe.get(k.active)
            pipe.get(k.pending)
            pipe.get(k.last_attempt)
            pipe.get(k.lock)
            pipe.pttl(k.lock)
        replies = pipe.execute()
        actives, pendings, attempts = replies[0::5], replies[1::5], replies[2::5]
        locks = [lock_of(v, t) for v, t in zip(replies[3::5], replies[4::5], strict=True)]
        for src, active in zip(known, actives, strict=True):
            pipe.hgetall(_Keys(src).meta(reply_text(active)) if active is not None else "-")
        metas = pipe.execute() if known else []
        result: dict[HotlistSource, SourceStatus] = {}
        for src, active, pend, attempt, lock, meta in zip(
            known, actives, pendings, attempts, locks, metas, strict=True
        ):
            m = {reply_text(k): reply_text(v) for k, v in meta.items()}
            importing = lock is not None and not lock.stale
            result[src] = SourceStatus(
                source=src,
                version=int(reply_text(active)) if active is not None else None,
                entries=int(m.get("count", 0)),
                imported_at=int(m["imported_at"]) if "imported_at" in m else None,
                updated_at=int(m["updated_at"]) if "updated_at" in m else None,
                importing=importing,
                index_depth=int(m.get("depth", 0)),
                report=json.loads(m["report"]) if "report" in m else None,
                last_attempt=json.loads(reply_text(attempt)) if attempt is not None else None,
                import_lock=lock,
                cut_off_version=(int(reply_text(pend)) if pend is not None and not importing
                                 else None),
            )
        return result


@dataclass(slots=True)
class _WriteStats:
    received: int = 0
    expired: int = 0
    refused: int = 0
    stored: int = 0
    depth: int = 0


def _refused(entry: HotlistEntry) -> bool:
    return entry_refusal(entry.reason, entry.category) is not None


def _plate_of(entry: HotlistEntry) -> str:
    plate = normalise_plate(entry.plate)
    if not plate:
        raise ValueError(f"entry {entry.entry_id} has no usable plate: {entry.plate!r}")
    return plate


def _record(entry: HotlistEntry, plate: str) -> str:
    """The stored JSON: plate normalised (it is what a hit reports), source left out
    (the key says it) and nulls too, to save memory at a million entries (the model
    restores them as None). Starts with "plate": the write script relies on it."""
    if plate != entry.plate:
        entry = entry.model_copy(update={"plate": plate})
    # pydantic writes fields in model order, compact: plate first.
    return entry.model_dump_json(exclude_none=True, exclude={"source"})


def _parse_records(source: HotlistSource, value: Any, now: int) -> list[HotlistEntry]:
    """The live entries of one canonical plate's records."""
    if not value:
        return []
    out: list[HotlistEntry] = []
    for line in reply_text(value).split("\n"):
        try:
            data = json.loads(line)
            entry = HotlistEntry.model_validate({**data, "source": source})
        except (ValueError, ValidationError):
            log.error("hotlist %s: unreadable entry record %r", source, line[:200])
            continue
        if entry.expires_at is not None and entry.expires_at < now:
            continue
        if entry.effective_at is not None and entry.effective_at > now:
            continue
        out.append(entry)
    return out


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _source(name: str) -> HotlistSource | None:
    try:
        return HotlistSource(name)
    except ValueError:  # a source this version does not know
        return None
