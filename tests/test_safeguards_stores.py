"""Issue 17, item 2: the audit store and the read store are never one server, and an
expired read does not stay on the data Redis's disk."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from safeguard_builders import make_read

from safeguards.persistence import SharedServerError, ensure_separate, sweep
from safeguards.retention import ReadStore
from safeguards.settings import SafeguardSettings
from safeguards.wiring import Safeguards
from sim.local_services import LocalRedis


def test_one_server_for_audit_and_reads_refuses_to_start(server: LocalRedis) -> None:
    """Fed: the same durable server as data and audit, once by the same URL, once by
    another db number and host spelling. Must survive: a refusal at start, nothing
    written (no agency, no audit record)."""
    for audit_url in (server.url, f"redis://localhost:{server.port}/3"):
        settings = SafeguardSettings(redis_url=server.url, audit_redis_url=audit_url)
        with pytest.raises(SharedServerError, match="same server"):
            Safeguards.build(settings)
    assert server.client().dbsize() == 0
    with pytest.raises(SharedServerError):
        Safeguards.build(data=server.client(), audit=server.client(db=5))


def test_no_audit_url_refuses_to_start(server: LocalRedis) -> None:
    """Fed: no ALPR_SG_AUDIT_REDIS_URL. Must survive: a refusal naming the setting (it
    used to fall back to the data Redis)."""
    with pytest.raises(ValueError, match="ALPR_SG_AUDIT_REDIS_URL"):
        Safeguards.build(SafeguardSettings(redis_url=server.url, audit_redis_url=""))


def test_separate_servers_start(server: LocalRedis, data_client: redis.Redis) -> None:
    ensure_separate(data_client, server.client())  # no error


def _files_mentioning(directory: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(directory)) for p in directory.rglob("*")
            if p.is_file() and needle in p.read_bytes()]


def _rewrites_done(client: redis.Redis, deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        info = client.info("persistence")
        if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]
                or info["rdb_bgsave_in_progress"]):
            return
        time.sleep(0.05)
    raise AssertionError("the rewrite did not finish")


@pytest.mark.parametrize("mode", ["aof", "rdb"])
def test_an_expired_read_leaves_the_data_redis_disk(mode: str, tmp_path: Path) -> None:
    """Fed: a read kept 2 s, stored in a data Redis of its own that persists (AOF with
    fsync always, or RDB snapshots), and the server's files are on disk. After the read
    expired and one sweep ran, no file in the server's directory holds its plate; before
    the sweep the AOF did (that is what the review found)."""
    with LocalRedis(appendonly=mode == "aof", data_dir=tmp_path / "data") as srv:
        client = srv.client()
        if mode == "rdb":
            client.config_set("save", "3600 1")
        store = ReadStore(client, 2, bucket_s=1)
        store.put(make_read("QXZ4711"))
        if mode == "rdb":
            client.save()  # a snapshot taken while the read was live
        assert _files_mentioning(srv.data_dir, b"QXZ4711"), "the read was never on disk"
        time.sleep(3.2)  # past the read's retention (and its index bucket's)
        result = sweep(client)
        assert (result.aof_rewrite, result.snapshot) == (mode == "aof", mode == "rdb")
        _rewrites_done(client)
        assert _files_mentioning(srv.data_dir, b"QXZ4711") == []
