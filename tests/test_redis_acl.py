"""The per-component Redis ACL users of deploy/redis/*.acl.template (docker-compose.yml).

Fed: a redis-server started with the data users' file (passwords filled in), and another
with the audit users' file; each component run against them as its own user: the
importer imports a list, the flow matches reads, the safeguards build over both servers.
Must hold: each does its job; none can touch another's keys (the flow writes nothing,
the importer cannot read the safeguards' records, nobody but the safeguards reaches
them); the default user is off.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from string import Template

import pytest
import redis
from hotlist_helpers import entry
from safeguard_builders import build_stack

from hotlists.matching import match_plates
from hotlists.store import HotlistStore
from kernel.contracts import HotlistSource
from kernel.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORDS = {name: secrets.token_hex(12) for name in (
    "FLOW_PASSWORD", "IMPORTER_PASSWORD", "SG_PASSWORD", "AUDIT_PASSWORD")}


def _server(template: str, tmp: Path, *durable: str) -> Iterator[int]:
    acl = tmp / Path(template).stem  # data-users.acl
    acl.write_text(Template((ROOT / "deploy" / "redis" / template).read_text())
                   .substitute(PASSWORDS))
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--dir", str(tmp),
                             "--aclfile", str(acl), *durable], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
            except redis.AuthenticationError:
                break  # up, and the default user is off
            except redis.ResponseError:
                break
            except redis.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "no redis-server"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def data_port(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "data").mkdir()
    yield from _server("data-users.acl.template", tmp_path / "data", "--appendonly", "no")


@pytest.fixture
def audit_port(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "audit").mkdir()
    # As compose runs it: every audit write fsynced (the safeguards refuse less).
    yield from _server("audit-users.acl.template", tmp_path / "audit",
                       "--appendonly", "yes", "--appendfsync", "always")


def _as(port: int, user: str, password_name: str) -> redis.Redis:
    return redis.Redis(port=port, username=user, password=PASSWORDS[password_name])


def test_the_default_user_is_off(data_port: int, audit_port: int) -> None:
    for port in (data_port, audit_port):
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            redis.Redis(port=port).set("x", "1")


def test_the_importer_imports_and_the_flow_only_looks_up(data_port: int) -> None:
    importer = HotlistStore(_as(data_port, "importer", "IMPORTER_PASSWORD"))
    importer.replace_source(HotlistSource.NCIC, [entry("ABC1234", "N1"), entry("XYZ987", "N2")])
    flow_client = _as(data_port, "flow", "FLOW_PASSWORD")
    flow = HotlistStore(flow_client)
    hits = match_plates(flow, ["ABC1234", "A8C1234", "QQQ111"])
    assert [[h.entry.entry_id for h in found] for found in hits] == [["N1"], ["N1"], []]
    with pytest.raises(redis.exceptions.NoPermissionError):
        flow_client.set("alpr:hl:NCIC:serving", "999")  # cannot switch a list
    with pytest.raises(redis.exceptions.NoPermissionError):
        flow_client.get("alpr:sg:users")  # cannot read the safeguards' records
    with pytest.raises(redis.exceptions.NoPermissionError):
        flow_client.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        _as(data_port, "importer", "IMPORTER_PASSWORD").hgetall("alpr:sg:user:det")


def test_the_safeguards_run_on_their_users_and_reach_only_their_keys(
    data_port: int, audit_port: int
) -> None:
    data = _as(data_port, "safeguards", "SG_PASSWORD")
    audit = _as(audit_port, "audit-writer", "AUDIT_PASSWORD")
    stack = build_stack(data, audit)  # registry, stores, audit: every write of a build
    assert stack.sg.access.user("det") is not None
    assert stack.sg.audit.head().seq > 0
    with pytest.raises(redis.exceptions.NoPermissionError):
        data.set("alpr:hl:NCIC:serving", "1")  # hotlists are read, never written
    with pytest.raises(redis.exceptions.NoPermissionError):
        data.flushall()
