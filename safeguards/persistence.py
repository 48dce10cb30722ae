"""Where the safeguards' data may live on disk: the audit and the reads never share a
server, and the reads' server keeps no expired read on disk for long.

The audit Redis keeps everything forever (`appendonly yes`, never rewritten away). A
read stored on that server would sit in its AOF long after its 30-day expiry, so the
audit Redis and the data Redis must be different servers: compared by the `run_id`
each server reports, so two URLs naming one server (another host name, another db
number) are caught too. `ensure_separate` refuses to start otherwise.

The data Redis may persist (agencies and users live there), but an AOF keeps every
write until it is rewritten and an RDB snapshot keeps what was live when it was taken.
Both rewrites (BGREWRITEAOF, BGSAVE) write only keys that are live at that moment, so
`DiskSweeper` runs them on a schedule: an expired read leaves the disk within one
sweep interval of its expiry (`test_an_expired_read_leaves_the_data_redis_disk`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import redis

__all__ = ["DiskSweeper", "SharedServerError", "ensure_separate", "server_id", "sweep"]

log = logging.getLogger(__name__)


class SharedServerError(ValueError):
    """The audit trail and the reads would be kept by one Redis server."""


def server_id(client: redis.Redis) -> str:
    """The server's run_id: one per redis-server process, whatever URL reached it."""
    return str(client.info("server")["run_id"])


def ensure_separate(data: redis.Redis, audit: redis.Redis) -> None:
    """Refuse (SharedServerError) a data Redis that is the audit Redis."""
    if server_id(data) == server_id(audit):
        raise SharedServerError(
            "the audit Redis and the data Redis are the same server: the audit's "
            "append-only file would keep every read past its retention. Run the audit "
            "trail on a Redis server of its own (ALPR_SG_AUDIT_REDIS_URL)")


@dataclass(frozen=True, slots=True)
class SweepResult:
    aof_rewrite: bool
    snapshot: bool


def sweep(client: redis.Redis) -> SweepResult:
    """Rewrite whatever the data Redis persists, so it holds live keys only: the AOF
    (if on) and the RDB snapshot (if configured or one exists). A rewrite already under
    way counts (Redis schedules ours after it)."""
    conf = {_text(k): _text(v) for k, v in client.config_get("append*").items()}
    save = {_text(k): _text(v) for k, v in client.config_get("save").items()}
    aof = conf.get("appendonly") == "yes"
    rdb = bool(save.get("save", "").strip())
    if aof:
        _background(client.bgrewriteaof)
    if rdb:
        _background(lambda: client.bgsave(schedule=True))
    return SweepResult(aof, rdb)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _background(start: object) -> None:
    try:
        start()  # type: ignore[operator]
    except redis.ResponseError as exc:
        # "already in progress": that rewrite also drops what has expired by now.
        if "progress" not in str(exc):
            raise


class DiskSweeper:
    """Runs `sweep` on the data Redis every `interval_s` in a daemon thread."""

    def __init__(self, client: redis.Redis, interval_s: float) -> None:
        self.client = client
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alpr-disk-sweeper",
                                        daemon=True)

    def start(self) -> DiskSweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                sweep(self.client)
            except redis.RedisError as exc:
                log.error("data Redis disk sweep failed (retried in %ss): %s",
                          self.interval_s, exc)
