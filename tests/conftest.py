"""Shared fixtures: real servers on free loopback ports, never the developer's own.

- `redis_server`: a LocalRedis for the whole session (no persistence).
- `redis_client`: a client of its database SCRATCH_DB (15), flushed before each test.
  Module-scoped data (e.g. an end-to-end scenario) lives in db 0 and is never flushed
  by it.
- `server` / `client`: a durable redis-server (AOF, fsync always) per test module, as the
  safeguards' audit needs, and a client of it flushed before each test.
- `data_server` / `data_client`: a plain redis-server per module, the safeguards' data
  Redis (never the audit's server).
- `stack` / `http`: the safeguards services on `data_client` (data) and `client` (audit) and a
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
import pyotp
import pytest
import redis
from fastapi.testclient import TestClient

# The project is not installed in the venv: make its packages importable from tests/.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from safeguard_builders import TEST_SIGNER, AdminFiles, Stack, build_stack  # noqa: E402

from safeguards.admin_auth import AdminDirectory  # noqa: E402
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
def admin_files(tmp_path_factory: pytest.TempPathFactory) -> AdminFiles:
    """The record key (the test stacks' own) and an administrators file with one
    administrator, `root`, whose token is in a file: what `alpr admin` makes."""
    base = tmp_path_factory.mktemp("admin")
    key = base / "record.key"
    key.write_text(TEST_SIGNER.key.hex())
    admins = base / "admins.json"
    token, totp = AdminDirectory(admins, token_cost=2**10).add("root")
    token_file = base / "admin.token"
    token_file.write_text(token)
    return AdminFiles(key, admins, token_file, totp)


@pytest.fixture(autouse=True)
def admin_env(admin_files: AdminFiles, monkeypatch: pytest.MonkeyPatch) -> AdminFiles:
    """Every `alpr` command in a test runs with the test record key and as the test
    administrator (token file and a TOTP code current at the test's start)."""
    monkeypatch.setenv("ALPR_SG_RECORD_KEY_FILE", str(admin_files.record_key))
    monkeypatch.setenv("ALPR_SG_ADMINS_FILE", str(admin_files.admins))
    monkeypatch.setenv("ALPR_ADMIN_TOKEN_FILE", str(admin_files.token_file))
    monkeypatch.setenv("ALPR_ADMIN_TOTP", pyotp.TOTP(admin_files.totp_secret).now())
    return admin_files


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


def _emptied(srv: LocalRedis) -> Iterator[redis.Redis]:
    c = srv.client()
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def client(server: LocalRedis) -> Iterator[redis.Redis]:
    """A client of `server`, emptied before each test."""
    yield from _emptied(server)


@pytest.fixture(scope="module")
def data_server() -> Iterator[LocalRedis]:
    """The safeguards' data Redis (reads, users, agencies): a server of its own, never
    the audit's (the safeguards refuse to start on one server for both)."""
    with LocalRedis() as srv:
        yield srv


@pytest.fixture
def data_client(data_server: LocalRedis) -> Iterator[redis.Redis]:
    """A client of `data_server`, emptied before each test."""
    yield from _emptied(data_server)


@pytest.fixture
def stack(data_client: redis.Redis, client: redis.Redis) -> Stack:
    return build_stack(data_client, client)


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
