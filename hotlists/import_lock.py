"""A source's import lock as operators see it, and the heartbeat that keeps it.

The lock names its holder (host, pid) and has a TTL that a heartbeat thread refreshes
every TTL/5 while the import lives: an importer that dies or loses Redis frees the
source within one TTL of its last beat, and `alpr hotlist status` can tell a running
import from a stale lock.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

__all__ = ["ImportLock", "LockHeartbeat", "iso_utc", "lock_of", "reply_text"]


def reply_text(value: Any) -> str:
    """Redis replies are bytes or str depending on the client's decode_responses."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class ImportLock:
    """A source's import lock as Redis holds it: who took it and whether it is still
    refreshed. A stale lock (no heartbeat for over half its TTL) belongs to an import
    that was killed or cut off from Redis; it frees itself in `expires_in_ms`."""

    host: str | None  # None: a lock without a holder record (set by hand or an old importer)
    pid: int | None
    started_at: int | None  # epoch ms
    expires_in_ms: int | None  # None: the lock has no TTL (not set by an importer)
    silent_ms: int | None  # since its holder last refreshed it; None: unknown
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for operators, e.g. `held by host h pid 12 since ..., last heartbeat
        1 s ago`; for a stale lock, that it is stale and when it frees itself."""
        holder = f"host {self.host} pid {self.pid}" if self.host else "an unknown holder"
        since = f" since {iso_utc(self.started_at)}" if self.started_at else ""
        expires = (f"it expires in {math.ceil(self.expires_in_ms / 1000)} s"
                   if self.expires_in_ms is not None else "it has no expiry")
        if self.silent_ms is None:
            return f"held by {holder}{since}; {expires}"
        silent = round(self.silent_ms / 1000)
        if self.stale:
            return (f"held by {holder}{since} but stale: no heartbeat for {silent} s, that "
                    f"import was cut off or killed; {expires}, then imports run again")
        return (f"held by {holder}{since}, last heartbeat {silent} s ago; if that import "
                f"was cut off, {expires}")


class LockHeartbeat:
    """Refreshes an import's lock every `every_s` from a thread of its own, so the lock
    stays while the import lives however slowly its feed is read, and frees itself
    lock_ttl after the importer dies or loses Redis."""

    def __init__(self, refresh: Callable[[], Any], *, every_s: float, name: str) -> None:
        self._refresh = refresh
        self._every_s = every_s
        self._stopped = threading.Event()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(self._every_s):
            try:
                if not int(self._refresh()):
                    return  # lost or taken over: the import's next write finds out
            except redis.RedisError:
                pass  # the import's own calls fail and say so; beat again next time

    def stop(self) -> None:
        # Not joined: a beat stuck on a hung Redis ends at the client's timeout, and a
        # late one only extends a lock that is still this import's.
        self._stopped.set()


def lock_of(value: Any, pttl: int) -> ImportLock | None:
    """The lock as status shows it, from its value and PTTL (-2: gone, -1: no TTL)."""
    if value is None or pttl == -2:
        return None
    try:
        holder = json.loads(reply_text(value))
    except ValueError:
        holder = None
    if not isinstance(holder, dict):
        holder = {}  # a lock set by hand or by an older importer: holder unknown
    ttl = holder.get("ttl_ms")
    silent = max(0, ttl - pttl) if isinstance(ttl, int) and pttl >= 0 else None
    pid, started = holder.get("pid"), holder.get("started_at")
    return ImportLock(
        host=str(holder["host"]) if holder.get("host") else None,
        pid=pid if isinstance(pid, int) else None,
        started_at=started if isinstance(started, int) else None,
        expires_in_ms=pttl if pttl >= 0 else None,
        silent_ms=silent,
        # Over half the TTL without a heartbeat (one every fifth): the holder is gone.
        stale=silent is not None and silent > ttl // 2,
    )


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
