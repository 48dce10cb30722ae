"""The one place the project's Redis clients are made.

A Redis that hangs (process stopped, network black-holed) rather than dies accepts a
connection, or swallows the packets, and never answers: without a timeout its callers
wait forever. Every client made here gives up after `ALPR_REDIS_SOCKET_TIMEOUT_S` with
redis.TimeoutError, a redis.RedisError like a refused connection, so a hang takes the
path each caller already takes for an outage: the flow's hotlist join retries with
backoff, the CLI prints one line, the API answers 503.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kernel.settings import Settings

__all__ = ["redis_from_url"]


def redis_from_url(url: str, *, timeout_s: float | None = None) -> redis.Redis:
    """A client of `url` whose connects and replies each time out after `timeout_s`
    (default: the setting, read now, so a changed environment applies)."""
    timeout = Settings().redis_socket_timeout_s if timeout_s is None else timeout_s
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        # No retries inside the client (redis-py's default differs between versions):
        # a hang costs one timeout, and the callers that should retry (the flow's join,
        # the watcher's next poll) do it themselves.
        retry=Retry(NoBackoff(), 0),
    )
