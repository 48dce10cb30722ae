"""Shared fixtures: real servers on free loopback ports, never the developer's own.

- `redis_server`: a LocalRedis for the whole session (no persistence).
- `redis_client`: a client of its database SCRATCH_DB (15), flushed before each test.
  Module-scoped data (e.g. an end-to-end scenario) lives in db 0 and is never flushed
  by it.
- `server` / `client`: a durable redis-server (AOF, fsync always) per test module, as the
  safeguards' audit needs, and a client of it flushed before each test.
- `stack` / `http`: the safeguards services on `client` (data and audit alike) and a
  TestClient of their API; modules that need seeded data or other API limits override
  them.
- `kafka`: bootstrap servers, `$KAFKA_BOOTSTRAP` if set, else a tansu broker for the
  session. Tests should create uniquely named topics (`unique_topic`) and delete them:
  tansu keeps everything in memory.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

# The project is not installed in the venv: make its packages importable from tests/.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from safeguard_builders import Stack, build_stack  # noqa: E402

from safeguards.api import create_app  # noqa: E402
from sim.local_services import (  # noqa: E402
    KAFKA_BOOTSTRAP_ENV,
    LocalRedis,
    LocalServiceError,
    kafka_bootstrap,
    tansu_binary,
)
from sim.plate_render import random_plate  # noqa: E402
from sim.scene import Conditions, render_frame  # noqa: E402


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


SCRATCH_DB = 15


@pytest.fixture
def redis_client(redis_server: LocalRedis) -> Iterator[redis.Redis]:
    client = redis_server.client(db=SCRATCH_DB)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedis]:
    """A durable redis-server (AOF, fsync always), as the safeguards require of the audit
    Redis; one per test module."""
    with LocalRedis(appendonly=True) as srv:
        yield srv


@pytest.fixture
def client(server: LocalRedis) -> Iterator[redis.Redis]:
    """A client of `server`, emptied before each test."""
    c = server.client()
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def stack(client: redis.Redis) -> Stack:
    return build_stack(client, client)


@pytest.fixture
def http(stack: Stack) -> TestClient:
    return TestClient(create_app(stack.sg))


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    # No broker binary on this platform and none configured: skip, don't fail. Any other
    # start-up problem (tansu dying, not ready) is a real failure.
    if not os.environ.get(KAFKA_BOOTSTRAP_ENV, "").strip():
        try:
            tansu_binary()
        except LocalServiceError as exc:
            pytest.skip(str(exc))
    with kafka_bootstrap() as bootstrap:
        yield bootstrap


@pytest.fixture
def unique_topic() -> Callable[[str], str]:
    """unique_topic("alerts") -> "test.alerts.3f2a9c1d": no clash between tests/runs."""

    def make(stem: str = "topic") -> str:
        return f"test.{stem}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture(scope="session")
def detector_frames() -> list[np.ndarray]:
    """Two synthetic camera frames (clean and severe), two plates each, for comparing
    detector models or runtimes on the same input."""
    rng = np.random.default_rng(7)
    out = []
    for conditions in (Conditions.clean(), Conditions.severe(rng)):
        plates = [(random_plate(rng), 0.35, 0.6, 1.0), (random_plate(rng), 0.7, 0.55, 0.8)]
        out.append(np.asarray(render_frame(plates, rng, conditions)))
    return out
