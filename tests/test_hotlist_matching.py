"""Misread-tolerant matching against a real Redis, and the flow's join."""

from __future__ import annotations

import random

import pytest
import redis
from hotlist_helpers import entry

from flows.hotlist_join import join_reads
from hotlists.match_policy import DEFAULT_POLICIES, SourcePolicy
from hotlists.matching import Hit, match_plates
from hotlists.plates import EQUIVALENCE_CLASSES, canonical, half_keys
from hotlists.store import HotlistStore
from kernel.contracts import HotlistEntry, HotlistSource, PlateRead

NCIC = HotlistSource.NCIC
NCMEC = HotlistSource.NCMEC
LOCAL = HotlistSource.LOCAL
NOW = 1_800_000_000_000


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
        # The states are the alert's to compare (kernel.contracts.make_alert).
        "read_state": None, "entry_state": None, "state_agrees": None,
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
    # More reads than one HMGET chunk (4000) and a big misread index (lookup.lua reads
    # it whole or field by field depending on its size: both paths are tested here and in
    # test_indexed_matching_equals_a_scan).
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


def test_one_wildcard_probes_are_gated_by_halves_only_in_versions_that_have_them(
    store: HotlistStore,
) -> None:
    """Fed: an Amber entry, then its version's half keys taken out of the index. In a
    version of this layout a read one substitution away is then not found (the halves
    gate its one-wildcard probes); marked as a layout-2 version, written before the
    halves existed, it is found again (every read's one-wildcard keys are probed)."""
    store.replace_source(NCMEC, [entry("7KQX214", "amber-1", NCMEC, priority=1)], now_ms=NOW)
    assert ids(one(store, "7KQX219")) == ["amber-1"]
    fuzzy, meta = "alpr:hl:NCMEC:v1:fuzzy", "alpr:hl:NCMEC:v1:meta"
    assert store.redis.hdel(fuzzy, *half_keys(canonical("7KQX214"))) == 2  # a7:7K0, b7:X214
    assert one(store, "7KQX219") == []
    assert ids(one(store, "7KQX214")) == ["amber-1"]  # exact matching is not gated
    store.redis.hset(meta, "layout", "2")
    assert ids(one(store, "7KQX219")) == ["amber-1"]


def test_reads_too_short_for_any_index_key_fail_nothing(store: HotlistStore) -> None:
    """Fed: batches of one-character reads (no misread-index key can be built from them)
    against a list with a misread index. Before, the script sent Redis an HMGET with no
    field and the whole batch failed. Must hold: no hit for them, the rest matched."""
    store.upsert(entry("7KQX214", "amber-1", NCMEC, priority=1))
    assert match_plates(store, ["A"], now_ms=NOW) == [[]]
    hits = match_plates(store, ["7", "7KQX219", "Q"], now_ms=NOW)
    assert [ids(h) for h in hits] == [[], ["amber-1"], []]


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


# --- the index finds what a scan would ------------------------------------------------


def _scan(store: HotlistStore, everything: list[HotlistEntry], read: str,
          state: str | None) -> list[str]:
    """What match_plates must return, found by checking every entry (no index)."""
    from hotlists.matching import _verify

    # Plates two or more characters longer or shorter never match (compare): skip them.
    near = [e for e in everything if abs(len(e.plate) - len(read)) <= 1]
    return sorted(ids(_verify(store, read, state, near)))


def _near(plate: str, rng: random.Random) -> str:
    """A read near `plate`: look-alikes, substitutions, an end character added or lost,
    a character lost in the middle, or several of these."""
    read = plate
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.randrange(6)
        i = rng.randrange(len(read))
        if kind == 0:  # a look-alike
            cls = next((c for c in EQUIVALENCE_CLASSES if read[i] in c), read[i])
            read = read[:i] + rng.choice(cls) + read[i + 1:]
        elif kind == 1:
            read = read[:i] + rng.choice(ALPHABET) + read[i + 1:]
        elif kind == 2:
            read = rng.choice(ALPHABET) + read
        elif kind == 3:
            read = read + rng.choice(ALPHABET)
        elif kind == 4 and len(read) > 4:
            read = read[1:] if rng.random() < 0.5 else read[:-1]
        elif len(read) > 4:
            read = read[:i] + read[i + 1:]
    return read


ALPHABET = "AB8O0DQ1IL5SZ2GX"  # few symbols, many look-alikes: many near neighbours


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the defaults: one extra difference for priority 1 only
        {NCIC: SourcePolicy(max_extra=1, max_equivalent=2)},
        {LOCAL: SourcePolicy(max_extra=2), NCMEC: SourcePolicy(max_extra=2)},
        {NCIC: SourcePolicy(ocr_equivalence=False, max_extra=1, urgent_max_extra=2)},
    ],
    ids=["defaults", "ncic-extra1", "extra2", "no-equivalence"],
)
def test_indexed_matching_equals_a_scan(
    redis_client: redis.Redis, overrides: dict[HotlistSource, SourcePolicy]
) -> None:
    """Fed: 450 random entries over three sources (priorities 1-5, some with a state) and
    1,000 reads near them or random. Must hold: for every read, the index-backed lookup
    returns exactly the entries a full scan with the same rules returns."""
    rng = random.Random(4)
    store = HotlistStore(redis_client, policies={**DEFAULT_POLICIES, **overrides})
    everything: list[HotlistEntry] = []
    for source in (NCIC, NCMEC, LOCAL):
        batch = [
            entry("".join(rng.choice(ALPHABET) for _ in range(rng.randint(4, 8))),
                  f"{source}-{i}", source, priority=rng.randint(1, 5),
                  state=rng.choice((None, "CA", "CO")))
            for i in range(150)
        ]
        store.replace_source(source, batch, now_ms=NOW)
        everything += batch
    reads = [(_near(rng.choice(everything).plate, rng), rng.choice((None, "CA", "TX")))
             for _ in range(900)]
    reads += [("".join(rng.choice(ALPHABET) for _ in range(6)), None) for _ in range(100)]
    found = match_plates(store, [r for r, _ in reads], [s for _, s in reads], now_ms=NOW)
    fuzzy = 0
    for (read, state), hits in zip(reads, found, strict=True):
        assert sorted(ids(hits)) == _scan(store, everything, read, state), (read, state)
        fuzzy += sum(h.match.method == "fuzzy" for h in hits)
    assert fuzzy > 20  # the misread index was exercised, not just exact keys


def test_two_extra_differences_include_an_end_character(redis_client: redis.Redis) -> None:
    store = HotlistStore(redis_client, policies={LOCAL: SourcePolicy(max_extra=2)})
    store.replace_source(LOCAL, [entry("ABC1234", "l", LOCAL)], now_ms=NOW)
    for read, positions in (("XABC1294", [0, 6]), ("ABC12945", [5, 7]), ("BC1294", [0, 4]),
                            ("ABC129", [5, 6]), ("ABX1294", [2, 5])):
        [hit] = match_plates(store, [read], now_ms=NOW)[0]
        assert hit.match.differing_positions == positions, read
    assert match_plates(store, ["XABC1X94"], now_ms=NOW) == [[]]  # three: over the budget
