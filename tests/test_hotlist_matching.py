"""Misread-tolerant matching against a real Redis, and the flow's join."""

from __future__ import annotations

import pytest
import redis

from alpr.contracts import HotlistEntry, HotlistSource, PlateRead
from flows.hotlist_join import join_reads
from hotlists.matching import Hit, match_plates
from hotlists.policy import DEFAULT_POLICIES, SourcePolicy
from hotlists.store import HotlistStore

NCIC = HotlistSource.NCIC
NCMEC = HotlistSource.NCMEC
LOCAL = HotlistSource.LOCAL
NOW = 1_800_000_000_000


def entry(plate: str, entry_id: str, source: HotlistSource = NCIC, **kw: object) -> HotlistEntry:
    return HotlistEntry(
        plate=plate, source=source, entry_id=entry_id, reason=str(kw.pop("reason", "stolen")),
        **kw,  # type: ignore[arg-type]
    )


def ids(hits: list[Hit]) -> list[str]:
    return [h.entry.entry_id for h in hits]


@pytest.fixture
def store(redis_client: redis.Redis) -> HotlistStore:
    return HotlistStore(redis_client, policies=DEFAULT_POLICIES)


def one(store: HotlistStore, plate: str, state: str | None = None) -> list[Hit]:
    return match_plates(store, [plate], [state], now_ms=NOW)[0]


def test_exact_and_ocr_equivalent_matches(store: HotlistStore) -> None:
    store.replace_source(NCIC, [entry("ABC1234", "stolen-1", priority=3)], now_ms=NOW)
    exact = one(store, "abc-1234")
    assert ids(exact) == ["stolen-1"]
    assert exact[0].match.model_dump() == {
        "method": "exact", "hotlist_plate": "ABC1234", "read_plate": "ABC1234",
        "differing_positions": [],
    }
    look_alike = one(store, "A8C1234")  # B read as 8
    assert ids(look_alike) == ["stolen-1"]
    assert look_alike[0].match.method == "ocr_equivalent"
    assert look_alike[0].match.differing_positions == [1]
    assert look_alike[0].match.read_plate == "A8C1234"


def test_look_alikes_are_bounded(store: HotlistStore) -> None:
    store.replace_source(NCIC, [entry("ABC1234", "s")], now_ms=NOW)
    assert one(store, "48C1234") == []  # two look-alike positions: more than max_equivalent
    loose = HotlistStore(store.redis, policies={NCIC: SourcePolicy(max_equivalent=2)})
    assert ids(match_plates(loose, ["48C1234"], now_ms=NOW)[0]) == ["s"]


def test_other_differences_only_for_urgent_entries(store: HotlistStore) -> None:
    store.replace_source(
        NCIC,
        [entry("ABC1234", "stolen", priority=3), entry("7KQX214", "amber-in-ncic", priority=1)],
        now_ms=NOW,
    )
    assert one(store, "ABC1239") == []  # a routine list: exact or look-alikes only
    hits = one(store, "7KQX219")
    assert ids(hits) == ["amber-in-ncic"]
    assert hits[0].match.method == "fuzzy" and hits[0].match.differing_positions == [6]
    assert one(store, "7KQX299") == []  # two real differences: over the budget


def test_ncmec_tolerates_one_difference_and_end_characters(store: HotlistStore) -> None:
    store.upsert(entry("RK828AG", "amber-1", NCMEC, priority=1))
    for read, positions in (("RK828AB", [6]), ("RRK828AG", [0]), ("K828AG", [0]),
                            ("RK828AGX", [7]), ("RK828A", [6])):
        hits = one(store, read)
        assert ids(hits) == ["amber-1"], read
        assert hits[0].match.method == "fuzzy"
        assert hits[0].match.differing_positions == positions, read
    assert one(store, "RK82AG") == []  # missing in the middle: not recognised
    assert one(store, "RXX28AG") == []


def test_short_plates_never_match_fuzzily(store: HotlistStore) -> None:
    store.upsert(entry("AB12", "short", NCMEC, priority=1))
    assert ids(one(store, "AB12")) == ["short"]
    assert one(store, "AB13") == []


def test_policy_without_equivalence(redis_client: redis.Redis) -> None:
    strict = HotlistStore(redis_client, policies={LOCAL: SourcePolicy(ocr_equivalence=False,
                                                                      urgent_max_extra=0)})
    strict.replace_source(LOCAL, [entry("BOB123", "l1", LOCAL)], now_ms=NOW)
    assert match_plates(strict, ["B0B123"], now_ms=NOW) == [[]]
    assert ids(match_plates(strict, ["BOB123"], now_ms=NOW)[0]) == ["l1"]


def test_state_aware(store: HotlistStore) -> None:
    store.replace_source(
        NCIC, [entry("ABC1234", "ca", state="CA"), entry("ABC1234", "nostate")], now_ms=NOW
    )
    assert sorted(ids(one(store, "ABC1234", "CA"))) == ["ca", "nostate"]
    assert ids(one(store, "ABC1234", "tx")) == ["nostate"]
    assert sorted(ids(one(store, "ABC1234", None))) == ["ca", "nostate"]


def test_expired_and_not_yet_effective_never_match(store: HotlistStore) -> None:
    store.replace_source(
        LOCAL,
        [
            entry("EXP1234", "live", LOCAL, expires_at=NOW + 10),
            entry("EXP1234", "later", LOCAL, effective_at=NOW + 10),
        ],
        now_ms=NOW,
    )
    assert ids(match_plates(store, ["EXP1234"], now_ms=NOW)[0]) == ["live"]
    assert ids(match_plates(store, ["EXP1234"], now_ms=NOW + 10)[0]) == ["later", "live"]
    assert ids(match_plates(store, ["EXP1234"], now_ms=NOW + 11)[0]) == ["later"]


def test_same_list_near_duplicate_is_not_a_second_alert(store: HotlistStore) -> None:
    store.upsert(entry("RK959AD", "amber-d", NCMEC, priority=1))
    store.upsert(entry("RK959AF", "amber-f", NCMEC, priority=1))
    assert ids(one(store, "RK959AD")) == ["amber-d"]
    assert ids(one(store, "RK959AX")) == ["amber-d", "amber-f"]  # unexplained: both


def test_hits_sorted_by_priority_then_method(store: HotlistStore) -> None:
    store.replace_source(NCIC, [entry("ABC1234", "n", priority=3)], now_ms=NOW)
    store.upsert(entry("A8C1234", "m", NCMEC, priority=1))
    store.replace_source(LOCAL, [entry("ABC1234", "l", LOCAL, priority=3)], now_ms=NOW)
    hits = one(store, "ABC1234")
    assert [(h.entry.entry_id, h.match.method) for h in hits] == [
        ("m", "ocr_equivalent"), ("l", "exact"), ("n", "exact")]


def test_big_batches_and_big_index(store: HotlistStore) -> None:
    # More reads than one HMGET chunk (4000) and a misread index bigger than the probe
    # list, so both probe paths (HGETALL into Lua, HMGET) run.
    entries = [entry(f"ZZ{i:05d}", f"a{i}", NCMEC, priority=1) for i in range(3000)]
    store.replace_source(NCMEC, entries, now_ms=NOW)
    # Reads 3000.. differ from every entry in at least two leading characters: no hit.
    reads = [f"ZZ{i:05d}" for i in range(3000)] + [f"QQ{i:05d}" for i in range(3000, 4500)]
    reads.append("ZZ02999X")
    hits = match_plates(store, reads, now_ms=NOW)
    assert [len(h) for h in hits[:3000]] == [1] * 3000
    assert all(not h for h in hits[3000:4500])
    assert ids(hits[-1]) == ["a2999"]  # ZZ02999 with an extra end character
    few = match_plates(store, ["ZZ0001X", "ZZ00001X"], now_ms=NOW)
    # One substitution away from each of ZZ00010..ZZ00019, nothing else.
    assert sorted(ids(few[0])) == sorted(f"a{i}" for i in range(10, 20))
    assert ids(few[1]) == ["a1"]


def test_removed_entry_leaves_the_misread_index(store: HotlistStore) -> None:
    store.upsert(entry("7KQX214", "amber-1", NCMEC, priority=1))
    store.upsert(entry("7KQX214", "amber-2", NCMEC, priority=1))
    assert store.remove(NCMEC, "amber-1", "7KQX214")
    assert ids(one(store, "7KQX219")) == ["amber-2"]  # the plate is still listed
    assert store.remove(NCMEC, "amber-2", "7KQX214")
    assert one(store, "7KQX219") == []
    assert not store.redis.hlen("alpr:hl:NCMEC:v1:fuzzy")  # nothing left behind


# --- the flow's join ----------------------------------------------------------------


def read(plate: str, read_id: str = "r1", **kw: object) -> PlateRead:
    return PlateRead(
        read_id=read_id, plate=plate, confidence=0.95, char_confidences=[0.95] * len(plate),
        camera_id="cam-1", first_seen=1, last_seen=2, frames_used=["f"], frame_count=1,
        **kw,  # type: ignore[arg-type]
    )


def test_join_reads_fills_match_info(store: HotlistStore) -> None:
    store.replace_source(NCIC, [entry("ABC1234", "stolen-1", state="CA")])
    alerts = join_reads(store, [
        read("A8C1234", "r1"),
        read("ABC1234", "r2", state="TX"),  # another state's plate
        read("ABC1234", "r3", alertable=False),  # low confidence: reported, never alerted
    ])
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.read.read_id == "r1" and alert.entry.entry_id == "stolen-1"
    assert alert.match.method == "ocr_equivalent"
    assert alert.match.differing_positions == [1]
    assert alert.match.hotlist_plate == "ABC1234" and alert.match.read_plate == "A8C1234"


def test_new_amber_alert_matches_the_very_next_batch(store: HotlistStore) -> None:
    """The flow keeps no cache: an upsert is visible to the next lookup."""
    reads = [read("7KQX214")]
    assert join_reads(store, reads) == []
    store.upsert(entry("7KQX214", "amber-9", NCMEC, priority=1, reason="Amber alert"))
    alerts = join_reads(store, reads)
    assert [a.entry.entry_id for a in alerts] == ["amber-9"]
    assert store.remove(NCMEC, "amber-9", "7KQX214")
    assert join_reads(store, reads) == []
