"""Joining vehicle-pass reads with the hotlists held in Redis.

One batch of reads costs one round trip (hotlists.matching.match_plates): exact,
OCR-equivalent and, where a source's policy allows, fuzzy matches, state-aware; each
alert's `match` says how it matched and which positions differ. Nothing is cached here:
every batch reads the live lists, so an import or an Amber alert upsert is matched by
the next batch (the alpr.hotlist-updates topic is for consumers that do cache, such as
historical hits).

A Redis outage blocks the join and retries with backoff instead of dropping reads:
frames wait in Kafka and in the flow's state, and nothing is lost; the failure counter
tells the SRE. A Redis that hangs takes the same path: its client times out
(ALPR_REDIS_SOCKET_TIMEOUT_S, kernel.redis_client) with redis.TimeoutError.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from flows import metrics
from hotlists.matching import Hit, match_plates
from hotlists.store import HotlistStore

# alert_id and make_alert are the kernel's: historical hits build the same alerts.
from kernel.contracts import Alert, HotlistEntry, PlateRead, make_alert

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def now_ms() -> int:
    return int(time.time() * 1000)


def _with_retry(
    call: Callable[[], _T],
    *,
    max_backoff_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    delay = 0.1
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            metrics.HOTLIST_LOOKUP_FAILURES.inc()
            log.error("hotlist lookup failed, retrying in %.1fs: %s", delay, exc)
            sleep(delay)
            delay = min(max_backoff_s, delay * 2)


def lookup_with_retry(
    store: HotlistStore,
    plates: Sequence[str],
    *,
    max_backoff_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[list[HotlistEntry]]:
    """Exact lookups, retried while Redis is unreachable."""
    return _with_retry(
        lambda: store.lookup_many(plates), max_backoff_s=max_backoff_s, sleep=sleep
    )


def match_with_retry(
    store: HotlistStore,
    reads: Sequence[PlateRead],
    *,
    max_backoff_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[list[Hit]]:
    """Misread-tolerant hits of each read, retried while Redis is unreachable."""
    plates = [r.plate for r in reads]
    states = [r.state for r in reads]
    return _with_retry(
        lambda: match_plates(store, plates, states), max_backoff_s=max_backoff_s, sleep=sleep
    )


def join_reads(store: HotlistStore, reads: Sequence[PlateRead]) -> list[Alert]:
    """Alerts for the alertable reads of one batch: one per (read, matching entry)."""
    alertable = [r for r in reads if r.alertable]
    if not alertable:
        return []
    matches = match_with_retry(store, alertable)
    metrics.HOTLIST_LOOKUPS.inc(len(alertable))
    produced = now_ms()
    alerts: list[Alert] = []
    for read, hits in zip(alertable, matches, strict=True):
        for hit in hits:
            metrics.HOTLIST_HITS.labels(hit.entry.source.value).inc()
            alerts.append(make_alert(read, hit.entry, hit.match, produced))
    return alerts
