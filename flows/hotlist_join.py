"""Joining vehicle-pass reads with the hotlists held in Redis.

One batch of reads costs one round trip (hotlists.matching.match_plates): exact,
OCR-equivalent and, where a source's policy allows, fuzzy matches, state-aware; each
alert's `match` says how it matched and which positions differ. Nothing is cached here:
every batch reads the live lists, so an import or an Amber alert upsert is matched by
the next batch (the alpr.hotlist-updates topic is for consumers that do cache, such as
historical hits).

Outages never hold reads back and never lose an alert silently:

- Redis down or hung (its client times out, ALPR_REDIS_SOCKET_TIMEOUT_S): the batch's
  reads are published anyway and its alertable reads are *parked* (flows.pipeline keeps
  them, bounded, in the state of its `parked_joins` step, so recovery keeps them too) and
  joined once Redis answers. The failure is counted (alpr_hotlist_lookup_failures_total)
  and, for a growing pause (0.1 s doubling to ALPR_HOTLIST_RETRY_MAX_S), no batch asks
  Redis again: a hung Redis costs one timeout per pause, not one per batch.
- A list that vanished (a source this process saw serving now has no serving version or
  no entries: a Redis restarted empty, a FLUSHALL, an emptied list): a lookup that finds
  nothing there proves nothing, so the reads are parked for that source and joined
  against it when it is back; the outage is counted and shown
  (alpr_hotlist_source_outages_total, alpr_hotlist_source_missing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from flows import metrics
from hotlists.matching import Hit, match_plates, match_plates_serving
from hotlists.store import HotlistStore

# alert_id and make_alert are the kernel's: historical hits build the same alerts.
from kernel.contracts import Alert, HotlistSource, PlateRead, make_alert

log = logging.getLogger(__name__)

ALL_SOURCES = frozenset(HotlistSource)
# Parked reads are looked up this many per round trip when Redis is back.
REJOIN_CHUNK = 500
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Parked:
    """An alertable read whose join is owed: against `sources` (those that had vanished
    when it was read), or against every source if the lookup itself failed. `expected`:
    the sources that must be serving before an empty answer from them counts (those the
    parking process had seen serving): the process that retries may never have seen
    them."""

    read: PlateRead
    sources: frozenset[HotlistSource] = ALL_SOURCES
    parked_at: int = field(default_factory=now_ms)
    expected: frozenset[HotlistSource] = frozenset()


@dataclass
class JoinOutcome:
    alerts: list[Alert] = field(default_factory=list)
    parked: list[Parked] = field(default_factory=list)


class Backoff:
    """After a failed lookup, no lookup for a pause of 0.1 s doubling up to `max_s`;
    the next success resets it. Shared by a process's workers."""

    def __init__(self, max_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_s = max_s
        self.clock = clock
        self._delay = 0.1
        self._until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        return self.clock() >= self._until

    def seconds_left(self) -> float:
        return max(0.0, self._until - self.clock())

    def failed(self) -> float:
        with self._lock:
            pause = self._delay
            self._until = self.clock() + pause
            self._delay = min(self.max_s, self._delay * 2)
            return pause

    def succeeded(self) -> None:
        with self._lock:
            self._delay, self._until = 0.1, 0.0


class SourceWatch:
    """The hotlist sources this process has seen serving, and those the site requires
    (`required`: known from the start). One of them not serving (or empty) is an outage
    until it serves."""

    def __init__(self, required: frozenset[HotlistSource] = frozenset()) -> None:
        self.known: set[HotlistSource] = set(required)
        self.missing: frozenset[HotlistSource] = frozenset()
        self._lock = threading.Lock()

    def update(self, serving: frozenset[HotlistSource]) -> frozenset[HotlistSource]:
        """Record what serves now; returns the sources missing."""
        with self._lock:
            self.known |= serving
            missing = frozenset(self.known - serving)
            for source in sorted(missing - self.missing):
                metrics.HOTLIST_SOURCE_OUTAGES.labels(source.value).inc()
                metrics.HOTLIST_SOURCE_MISSING.labels(source.value).set(1)
                log.error("hotlist %s is required or was serving, and has no entries in "
                          "Redis (never imported, restarted empty, flushed or emptied): "
                          "reads are parked for it until it is imported", source.value)
            for source in sorted(self.missing - missing):
                metrics.HOTLIST_SOURCE_MISSING.labels(source.value).set(0)
                log.warning("hotlist %s is serving again: joining the reads parked for it",
                            source.value)
            self.missing = missing
            return missing


class HotlistJoin:
    """The flow's join: never blocks on Redis; what it cannot join now it parks."""

    def __init__(self, store: Callable[[], HotlistStore], backoff: Backoff,
                 watch: SourceWatch | None = None) -> None:
        self.store = store
        self.backoff = backoff
        self.watch = watch or SourceWatch()

    def join(self, reads: Sequence[PlateRead]) -> JoinOutcome:
        """Alerts of one batch's alertable reads, and the reads parked for later."""
        alertable = [r for r in reads if r.alertable]
        if not alertable:
            return JoinOutcome()
        # Redis failed moments ago: don't wait on it again.
        found = self._match(alertable) if self.backoff.allow() else None
        if found is None:
            known = frozenset(self.watch.known)
            return JoinOutcome(parked=[Parked(r, expected=known) for r in alertable])
        matches, _, missing = found
        metrics.HOTLIST_LOOKUPS.inc(len(alertable))
        alerts = _alerts(alertable, matches, ALL_SOURCES)
        parked = [Parked(r, missing, expected=missing) for r in alertable] if missing else []
        return JoinOutcome(alerts, parked)

    def rejoin(self, parked: Sequence[Parked]) -> tuple[list[Alert], list[Parked]]:
        """Join parked reads again: the alerts owed, and what must stay parked (Redis
        still down, or their sources still missing)."""
        if not parked or not self.backoff.allow():
            return [], list(parked)
        alerts: list[Alert] = []
        remaining: list[Parked] = []
        for start in range(0, len(parked), REJOIN_CHUNK):
            chunk = parked[start:start + REJOIN_CHUNK]
            found = self._match([p.read for p in chunk])
            if found is None:
                return alerts, remaining + list(parked[start:])
            matches, serving, missing = found
            for p, hits in zip(chunk, matches, strict=True):
                # Still owed: the sources it waits for that do not serve yet, by what the
                # parking process had seen serving (this one may never have: the parked
                # step's worker is not always the one that parked it) or this one has.
                owed = p.sources & (p.expected | missing) - serving
                alerts.extend(_alerts([p.read], [hits], p.sources - owed))
                if owed:
                    remaining.append(Parked(p.read, owed, p.parked_at, owed))
        metrics.HOTLIST_LOOKUPS.inc(len(parked) - len(remaining))
        return alerts, remaining

    def _match(
        self, reads: Sequence[PlateRead]
    ) -> tuple[list[list[Hit]], frozenset[HotlistSource], frozenset[HotlistSource]] | None:
        """Hits of each read, the sources serving, the sources missing (seen serving by
        this process before, and not now); None if Redis failed (counted, logged)."""
        try:
            matches, serving = match_plates_serving(
                self.store(), [r.plate for r in reads], [r.state for r in reads])
        except REDIS_DOWN as exc:
            metrics.HOTLIST_LOOKUP_FAILURES.inc()
            pause = self.backoff.failed()
            log.error("hotlist lookup failed (%d read(s) parked, next try in %.1f s): %s",
                      len(reads), pause, exc)
            return None
        self.backoff.succeeded()
        return matches, serving, self.watch.update(serving)


def _alerts(reads: Sequence[PlateRead], matches: Sequence[list[Hit]],
            sources: frozenset[HotlistSource]) -> list[Alert]:
    produced = now_ms()
    out: list[Alert] = []
    for read, hits in zip(reads, matches, strict=True):
        for hit in hits:
            if hit.entry.source in sources:
                metrics.HOTLIST_HITS.labels(hit.entry.source.value).inc()
                out.append(make_alert(read, hit.entry, hit.match, produced))
    return out


def join_reads(store: HotlistStore, reads: Sequence[PlateRead]) -> list[Alert]:
    """Alerts for the alertable reads of one batch: one per (read, matching entry). Raises
    if Redis fails (the flow uses HotlistJoin, which parks instead)."""
    alertable = [r for r in reads if r.alertable]
    if not alertable:
        return []
    matches = match_plates(store, [r.plate for r in alertable], [r.state for r in alertable])
    metrics.HOTLIST_LOOKUPS.inc(len(alertable))
    return _alerts(alertable, matches, ALL_SOURCES)
