"""HotlistStore against a real Redis (own server, free port)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from hotlist_helpers import entry, version_keys

from hotlists import (
    EmptyHotlistError,
    HotlistStore,
    ImportInProgressError,
    ImportLockLostError,
    RefusedEntryError,
    normalise_plate,
)
from hotlists.categories import with_vehicle
from kernel.contracts import HotlistEntry, HotlistSource
from sim.local_services import LocalRedis

NCIC = HotlistSource.NCIC
NCMEC = HotlistSource.NCMEC
LOCAL = HotlistSource.LOCAL
NOW = 1_800_000_000_000


def plates_of(hits: list[HotlistEntry]) -> list[str]:
    return [e.plate for e in hits]


@pytest.fixture
def store(redis_client: redis.Redis) -> HotlistStore:
    return HotlistStore(redis_client)


def test_normalise_plate() -> None:
    assert normalise_plate(" ab-123 c ") == "AB123C"
    assert normalise_plate("7·ÆB") == "7B"
    assert normalise_plate("") == ""


def test_replace_and_lookup(store: HotlistStore, redis_client: redis.Redis) -> None:
    result = store.replace_source(
        NCIC,
        [entry("abc 123", "N1", state="CA"), entry("XYZ789", "N2"), entry("XYZ789", "N3")],
        now_ms=NOW,
    )
    assert (result.version, result.entries, result.received) == (1, 3, 3)
    assert result.previous_version is None

    hits = store.lookup_many(["ABC123", "xyz-789", "NOPE1", ""], now_ms=NOW)
    assert [[e.entry_id for e in h] for h in hits] == [["N1"], ["N2", "N3"], [], []]
    assert hits[0][0].plate == "ABC123" and hits[0][0].state == "CA"
    assert store.lookup_many([]) == []

    second = store.replace_source(NCIC, [entry("NEW1", "N9")], now_ms=NOW)
    assert (second.version, second.previous_version) == (2, 1)
    assert store.lookup("ABC123", now_ms=NOW) == []
    assert plates_of(store.lookup("NEW1", now_ms=NOW)) == ["NEW1"]
    assert version_keys(redis_client, NCIC) == {"v2"}  # old version deleted

    status = store.status()[NCIC]
    assert (status.version, status.entries, status.importing) == (2, 1, False)
    assert status.imported_at is not None and status.imported_at > 0


def test_expired_entries_are_dropped(store: HotlistStore) -> None:
    store.replace_source(
        NCIC,
        [
            entry("EXP1", "live", expires_at=NOW + 1000),
            entry("EXP1", "never"),
            entry("EXP1", "past", expires_at=NOW - 5),  # already expired: not even stored
        ],
        now_ms=NOW,
    )
    assert [e.entry_id for e in store.lookup("EXP1", now_ms=NOW)] == ["live", "never"]
    assert [e.entry_id for e in store.lookup("EXP1", now_ms=NOW + 1000)] == ["live", "never"]
    assert [e.entry_id for e in store.lookup("EXP1", now_ms=NOW + 1001)] == ["never"]
    assert store.status()[NCIC].entries == 2


def test_all_expired_counts_as_empty(store: HotlistStore, redis_client: redis.Redis) -> None:
    with pytest.raises(EmptyHotlistError):
        store.replace_source(NCIC, [entry("A1", "1", expires_at=NOW - 1)], now_ms=NOW)
    assert version_keys(redis_client, NCIC) == set()


def test_multiple_sources_for_one_plate(store: HotlistStore) -> None:
    store.replace_source(NCIC, [entry("SAME1", "n1", NCIC, priority=3)])
    store.replace_source(NCMEC, [entry("SAME1", "m1", NCMEC, priority=1)])
    store.replace_source(LOCAL, [entry("SAME1", "l1", LOCAL), entry("OTHER", "l2", LOCAL)])
    hits = store.lookup("SAME1")
    assert [(e.source, e.entry_id) for e in hits] == [(NCMEC, "m1"), (LOCAL, "l1"), (NCIC, "n1")]
    # Replacing one source leaves the others alone.
    store.replace_source(LOCAL, [entry("OTHER", "l2", LOCAL)])
    assert [e.source for e in store.lookup("SAME1")] == [NCMEC, NCIC]
    assert set(store.status()) == {NCIC, NCMEC, LOCAL}


def test_empty_list_refused_unless_allowed(store: HotlistStore) -> None:
    store.replace_source(NCIC, [entry("KEEP1", "k")])
    with pytest.raises(EmptyHotlistError):
        store.replace_source(NCIC, [])
    with pytest.raises(EmptyHotlistError):
        store.replace_source(NCIC, iter(()))
    assert plates_of(store.lookup("KEEP1")) == ["KEEP1"]

    result = store.replace_source(NCIC, [], allow_empty=True)
    assert result.entries == 0
    assert store.lookup("KEEP1") == []
    assert store.status()[NCIC].entries == 0


def test_failed_import_keeps_old_version_and_leaves_no_keys(
    store: HotlistStore, redis_client: redis.Redis
) -> None:
    store.replace_source(NCIC, [entry(f"OLD{i}", f"o{i}") for i in range(50)])

    def broken() -> Iterator[HotlistEntry]:
        for i in range(250):
            yield entry(f"NEW{i}", f"n{i}")
        raise OSError("feed connection reset")

    with pytest.raises(OSError, match="feed connection reset"):
        store.replace_source(NCIC, broken(), batch=100)  # two batches already written

    assert plates_of(store.lookup("OLD7")) == ["OLD7"]
    assert store.lookup("NEW7") == []
    assert version_keys(redis_client, NCIC) == {"v1"}
    status = store.status()[NCIC]
    assert (status.version, status.entries, status.importing) == (1, 50, False)
    assert redis_client.smembers("alpr:hl:NCIC:versions") == {b"1"}
    # The lock was released: the next import runs.
    assert store.replace_source(NCIC, [entry("NEW1", "n1")]).version == 3


def test_entry_of_another_source_aborts_the_import(
    store: HotlistStore, redis_client: redis.Redis
) -> None:
    store.replace_source(NCIC, [entry("OLD1", "o1")])
    with pytest.raises(ValueError, match="NCMEC"):
        store.replace_source(NCIC, [entry("NEW1", "n1"), entry("NEW2", "m1", NCMEC)])
    assert plates_of(store.lookup("OLD1")) == ["OLD1"]
    assert version_keys(redis_client, NCIC) == {"v1"}


def test_concurrent_import_is_refused(store: HotlistStore, redis_client: redis.Redis) -> None:
    redis_client.set("alpr:hl:NCIC:lock", "someone-else", px=60_000)
    with pytest.raises(ImportInProgressError):
        store.replace_source(NCIC, [entry("A1", "1")])


def test_crashed_import_is_swept_by_the_next(
    store: HotlistStore, redis_client: redis.Redis
) -> None:
    store.replace_source(NCIC, [entry("OLD1", "o1")])
    # What an importer killed mid-write leaves behind (its lock has expired since).
    redis_client.set("alpr:hl:NCIC:next", 7)
    redis_client.set("alpr:hl:NCIC:pending", 7)
    redis_client.sadd("alpr:hl:NCIC:versions", 7)
    redis_client.hset("alpr:hl:NCIC:v7:plate:HALF1", "x", entry("HALF1", "x").model_dump_json())
    assert store.lookup("HALF1") == []
    result = store.replace_source(NCIC, [entry("NEW1", "n1")])
    assert result.version == 8
    assert version_keys(redis_client, NCIC) == {"v8"}
    assert redis_client.smembers("alpr:hl:NCIC:versions") == {b"8"}


def test_swap_is_atomic_for_lookups(redis_client: redis.Redis) -> None:
    # Small delete steps stretch the old version's deletion over many round trips.
    store = HotlistStore(redis_client, delete_scan_count=50)
    size = 400
    a_plates = [f"A{i}" for i in range(size)] + ["MARKA"]
    b_plates = [f"B{i}" for i in range(size)] + ["MARKB"]
    query = a_plates + b_plates

    def generation(n: int) -> list[HotlistEntry]:
        plates = a_plates if n % 2 == 0 else b_plates
        return [entry(p, f"{p}-{n}", reason=f"gen{n}") for p in plates]

    store.replace_source(NCIC, generation(0))
    stop = threading.Event()
    seen: list[str] = []
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            hits = store.lookup_many(query)
            found = [p for p, h in zip(query, hits, strict=True) if h]
            reasons = {e.reason for h in hits for e in h}
            if len(reasons) != 1 or found not in (a_plates, b_plates):
                problems.append(f"{len(found)} plates hit, generations {sorted(reasons)}")
            seen.extend(reasons)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 9):
            # Small batches: each import takes several round trips a lookup can fall into.
            store.replace_source(NCIC, generation(n), batch=50)
    finally:
        stop.set()
        thread.join(10)
    assert not problems, problems[:5]
    assert len(set(seen)) >= 3, "the reader should have seen several generations"
    # The last generation (8) is the A list.
    assert store.lookup("MARKB") == [] and store.lookup("MARKA")[0].reason == "gen8"


def test_upsert_and_remove(store: HotlistStore) -> None:
    amber = entry("amb 3r1", "AMBER-1", NCMEC, priority=1, reason="Amber alert")
    assert store.upsert(amber) is True  # no NCMEC list yet: creates version 1
    assert store.status()[NCMEC].version == 1
    assert [e.entry_id for e in store.lookup("AMB3R1")] == ["AMBER-1"]
    assert store.upsert(amber) is False  # same id: replaced, not added
    assert store.upsert(entry("AMB3R1", "AMBER-2", NCMEC)) is True
    status = store.status()[NCMEC]
    assert status.entries == 2 and status.updated_at is not None

    assert store.remove(NCMEC, "AMBER-1", "amb-3r1") is True
    assert store.remove(NCMEC, "AMBER-1", "AMB3R1") is False
    assert [e.entry_id for e in store.lookup("AMB3R1")] == ["AMBER-2"]
    assert store.status()[NCMEC].entries == 1

    # Into an imported list: lands in the active version.
    store.replace_source(NCIC, [entry("N1", "n1")])
    store.upsert(entry("N2", "n2"))
    assert store.status()[NCIC].entries == 2
    assert plates_of(store.lookup("N2")) == ["N2"]


def test_upsert_during_import_survives_the_flip(store: HotlistStore) -> None:
    store.replace_source(NCMEC, [entry("OLD1", "o1", NCMEC)])

    def feed() -> Iterator[HotlistEntry]:
        for i in range(30):
            if i == 15:  # an Amber alert arrives while the bulk list is being written
                store.upsert(entry("URGENT1", "amber-9", NCMEC, priority=1))
                assert store.status()[NCMEC].importing
            yield entry(f"BULK{i}", f"b{i}", NCMEC)

    result = store.replace_source(NCMEC, feed(), batch=10)
    assert result.entries == 31
    assert [e.entry_id for e in store.lookup("URGENT1")] == ["amber-9"]
    assert store.lookup("OLD1") == []


def test_many_batches_all_land(store: HotlistStore) -> None:
    # Several batches, written while the next is parsed: every one lands. (Speed is
    # measured by benchmarks/hotlists.py, not here.)
    entries = [entry(f"P{i:07d}", f"e{i}") for i in range(20_000)]
    result = store.replace_source(NCIC, entries, batch=3000)
    assert result.entries == 20_000
    hits = store.lookup_many([f"P{i:07d}" for i in range(0, 20_000, 40)])
    assert all(len(h) == 1 for h in hits)


def test_works_with_a_decoding_client(redis_server: LocalRedis, redis_client: redis.Redis) -> None:
    db = redis_client.connection_pool.connection_kwargs["db"]  # the flushed scratch db
    client = redis_server.client(db=db, decode_responses=True)
    try:
        store = HotlistStore(client)
        store.replace_source(NCIC, [entry("DEC1", "d1")])
        store.replace_source(NCIC, [entry("DEC2", "d2")])
        store.upsert(entry("DEC3", "d3"))
        assert [e.entry_id for e in store.lookup("DEC2")] == ["d2"]
        assert store.status()[NCIC].version == 2 and store.status()[NCIC].entries == 2
    finally:
        client.close()


def test_unicode_and_quotes_survive_the_bulk_write(store: HotlistStore) -> None:
    odd = entry("U1", 'id-é"\\/🚗', reason='Überfall 🚗 "armed" \\ \n\t', category="Ä")
    store.replace_source(NCIC, [odd])
    assert store.lookup("U1") == [odd]


def test_the_store_refuses_immigration_entries_on_every_path(
    store: HotlistStore, redis_client: redis.Redis
) -> None:
    """Fed straight to the store (no importer in front): immigration-related entries by
    reason or category. Must survive: nothing of them in Redis; everything else stored."""
    with pytest.raises(RefusedEntryError):
        store.upsert(entry("IMM1", "i1", reason="ICE detainer"))
    with pytest.raises(RefusedEntryError):
        store.upsert(entry("IMM2", "i2", reason="Wanted", category="immigration_violator"))
    result = store.replace_source(
        LOCAL, [entry("KEPT1", "k", LOCAL), entry("IMM3", "i3", LOCAL, reason="Deportation")]
    )
    assert (result.entries, result.refused) == (1, 1)
    assert store.lookup("IMM3") == [] and store.lookup("IMM1") == []
    assert not any(b"IMM" in redis_client.dump(k) for k in redis_client.scan_iter())
    # What the vehicle looks like is not what the entry is listed for.
    amber = entry("AMB1", "m1", NCMEC, reason=with_vehicle("Amber alert", "Elantra, Ice White"))
    assert store.upsert(amber) and store.lookup("AMB1") == [amber]


def test_import_that_loses_its_lock_is_abandoned(
    store: HotlistStore, redis_client: redis.Redis
) -> None:
    """Fed: an import whose lock expires mid-way and is taken by another importer. Must
    survive: the old version serving, the other importer's lock, no keys of the loser."""
    store.replace_source(NCIC, [entry("OLD1", "o1")])
    pulled = 0

    def feed() -> Iterator[HotlistEntry]:
        nonlocal pulled
        for i in range(1000):
            if i == 150:  # the lock expired during a stall; someone else holds it now
                redis_client.set("alpr:hl:NCIC:lock", "another-importer", px=60_000)
            pulled += 1
            yield entry(f"NEW{i}", f"n{i}")

    with pytest.raises(ImportLockLostError):
        store.replace_source(NCIC, feed(), batch=50)
    # It stopped within a batch or two (one write may be in flight), not at the end.
    assert pulled <= 300
    assert plates_of(store.lookup("OLD1")) == ["OLD1"] and store.lookup("NEW1") == []
    assert redis_client.get("alpr:hl:NCIC:lock") == b"another-importer"
    assert version_keys(redis_client, NCIC) == {"v1"}


def test_a_switch_over_whose_reply_is_lost_keeps_the_new_version(
    store: HotlistStore, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fed: an import whose flip runs in Redis but whose reply never arrives (a Redis
    that stalls past the client timeout, then answers). Must hold: the cleanup does not
    delete the version that now serves (lookups would find nothing); the import is
    reported as done, replacing version 1, which is deleted."""
    store.replace_source(NCIC, [entry("OLD1", "o1")])
    flip = store._flip

    def flip_then_lose_the_reply(*args: object, **kwargs: object) -> None:
        flip(*args, **kwargs)
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(store, "_flip", flip_then_lose_the_reply)
    result = store.replace_source(NCIC, [entry("NEW1", "n1")])
    assert (result.version, result.previous_version, result.entries) == (2, 1, 1)
    assert plates_of(store.lookup("NEW1")) == ["NEW1"] and store.lookup("OLD1") == []
    assert version_keys(redis_client, NCIC) == {"v2"}
    assert redis_client.get("alpr:hl:NCIC:lock") is None


def test_a_live_import_keeps_its_lock_past_its_ttl_and_a_second_import_is_refused(
    redis_client: redis.Redis,
) -> None:
    """Fed: an import with a 1 s lock TTL whose feed stalls 2.5 s after its first batch,
    and a second import of the same source tried during the stall. Must hold: the live
    import's lock outlives its TTL (its heartbeat refreshes it), so the second import is
    refused, naming the holder (host, pid); the first one completes and serves."""
    store = HotlistStore(redis_client, lock_ttl_s=1.0)
    store.replace_source(NCIC, [entry("OLD1", "o1")])
    refusals: list[str] = []

    def feed() -> Iterator[HotlistEntry]:
        for i in range(200):
            if i == 120:  # the first batch (100) is in Redis; the feed stalls
                time.sleep(2.5)
                try:
                    HotlistStore(redis_client).replace_source(NCIC, [entry("RIVAL1", "r1")])
                except ImportInProgressError as exc:
                    refusals.append(str(exc))
            yield entry(f"NEW{i}", f"n{i}")

    result = store.replace_source(NCIC, feed(), batch=100)
    [refusal] = refusals
    assert f"host {socket.gethostname()} pid {os.getpid()}" in refusal, refusal
    assert (result.version, result.entries) == (2, 200)
    assert plates_of(store.lookup("NEW150")) == ["NEW150"] and store.lookup("RIVAL1") == []
    assert redis_client.get("alpr:hl:NCIC:lock") is None


def test_an_import_whose_start_reply_is_lost_frees_its_lock(
    store: HotlistStore, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fed: an import whose start (lock + new version) runs in Redis but whose reply
    never arrives (a Redis that stalls past the client timeout, then answers). Must hold:
    the timeout reaches the caller, the lock it took is freed at once (a retry runs, no
    wait for the TTL) and the version it began is swept by that retry."""
    store.replace_source(NCIC, [entry("OLD1", "o1")])
    begin = store._begin

    def begin_then_lose_the_reply(*args: object, **kwargs: object) -> None:
        begin(*args, **kwargs)
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(store, "_begin", begin_then_lose_the_reply)
    with pytest.raises(redis.TimeoutError):
        store.replace_source(NCIC, [entry("LOST1", "l1")])
    monkeypatch.undo()
    assert redis_client.get("alpr:hl:NCIC:lock") is None
    assert plates_of(store.lookup("OLD1")) == ["OLD1"]
    result = store.replace_source(NCIC, [entry("NEW1", "n1")])
    assert (result.version, result.previous_version) == (3, 1)
    assert version_keys(redis_client, NCIC) == {"v3"}


def test_status_tells_a_stale_import_lock_from_a_live_one(
    store: HotlistStore, redis_client: redis.Redis
) -> None:
    """Fed: what an importer killed mid-import leaves: its lock (holder host and pid,
    10 s TTL, last refreshed 8 s ago) and its unfinished version 7. Must hold: status
    says no import runs, the lock is stale (naming its holder, freeing itself in 2 s) and
    version 7 was cut off; an import is still refused until the lock expires, saying it
    is stale. The same lock refreshed a moment ago is a live import."""
    store.replace_source(NCIC, [entry("OLD1", "o1")])
    holder = {"token": "t", "host": "importer-3", "pid": 4242, "started_at": NOW,
              "ttl_ms": 10_000}
    redis_client.set("alpr:hl:NCIC:lock", json.dumps(holder), px=2_000)
    redis_client.set("alpr:hl:NCIC:pending", 7)

    status = store.status()[NCIC]
    assert (status.importing, status.cut_off_version) == (False, 7)
    lock = status.import_lock
    assert lock is not None and lock.stale
    assert (lock.host, lock.pid, lock.started_at) == ("importer-3", 4242, NOW)
    assert 7_000 < lock.silent_ms <= 8_100 and 0 < lock.expires_in_ms <= 2_000
    assert "host importer-3 pid 4242" in lock.describe() and "stale" in lock.describe()
    with pytest.raises(ImportInProgressError, match=r"stale: no heartbeat for 8 s.*expires in 2 s"):
        store.replace_source(NCIC, [entry("NEW1", "n1")])

    redis_client.pexpire("alpr:hl:NCIC:lock", 9_500)
    status = store.status()[NCIC]
    assert (status.importing, status.cut_off_version) == (True, None)
    assert status.import_lock is not None and not status.import_lock.stale
    assert status.as_dict()["import_lock"]["pid"] == 4242
