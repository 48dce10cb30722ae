"""Misread-tolerant matching of reads against every hotlist, a batch per round trip.

The store narrows a million entries to a handful of candidates per read through its
indexes (canonical plate, wildcard keys); this module decides which candidates are
matches, under each source's policy (hotlists.match_policy):

* position by position: OCR look-alikes (0/O, 8/B, ...) are tolerated, up to
  max_equivalent positions, when the source has equivalence on; every other differing
  position, and an extra or missing character at either end, counts as an extra, and a
  match needs extras <= the entry's allowance (policy.extra_for: by source, priority
  and plate length);
* a list whose entry matches the read exactly or by look-alikes gives no fuzzy hit for
  the same read (its near-identical plates are not alerted as misreads);
* state-aware: a read with a state never matches an entry of another state (entries or
  reads without a state match any);
* expired and not yet effective entries never match (the store drops them).

No cache: every call reads Redis, so an upsert (a new Amber alert) matches the very next
batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hotlists.plates import canonical, compare, normalise_plate
from hotlists.store import HotlistStore
from kernel.contracts import HotlistEntry, HotlistSource, MatchInfo

__all__ = ["Hit", "match_plates", "match_plates_serving"]

_METHOD_RANK = {"exact": 0, "ocr_equivalent": 1, "fuzzy": 2}


@dataclass(frozen=True, slots=True)
class Hit:
    entry: HotlistEntry
    match: MatchInfo


def match_plates(
    store: HotlistStore,
    plates: Sequence[str],
    states: Sequence[str | None] | None = None,
    *,
    now_ms: int | None = None,
) -> list[list[Hit]]:
    """Hotlist hits of each read plate (same order), in one Redis round trip.

    `states`, if given, holds each read's state (or None). Each list is sorted by
    priority (1 first), then how it matched (exact first), source and entry id.
    """
    return match_plates_serving(store, plates, states, now_ms=now_ms)[0]


def match_plates_serving(
    store: HotlistStore,
    plates: Sequence[str],
    states: Sequence[str | None] | None = None,
    *,
    now_ms: int | None = None,
) -> tuple[list[list[Hit]], frozenset[HotlistSource]]:
    """`match_plates`, and the sources that were serving a non-empty list in the same
    atomic step: a source missing from them matched nothing because it was not there."""
    if states is not None and len(states) != len(plates):
        raise ValueError("states must have one item per plate")
    reads = [normalise_plate(p) for p in plates]
    keys = [canonical(p) for p in reads]
    found, serving = store.candidates_and_serving(keys, store.max_depth, now_ms=now_ms)
    out: list[list[Hit]] = []
    for i, (read, key) in enumerate(zip(reads, keys, strict=True)):
        candidates = found.get(key)
        if not candidates:
            out.append([])
            continue
        state = (states[i] or "").upper() or None if states is not None else None
        out.append(_verify(store, read, state, candidates))
    return out, serving


def _verify(
    store: HotlistStore, read: str, state: str | None, candidates: list[HotlistEntry]
) -> list[Hit]:
    hits: dict[tuple[str, str, str], Hit] = {}
    for entry in candidates:
        if state and entry.state and entry.state != state:
            continue
        policy = store.policy(entry.source)
        result = compare(read, entry.plate, equivalence=policy.ocr_equivalence)
        if result is None:
            continue
        allowed = policy.extra_for(entry.priority, min(len(read), len(entry.plate)))
        if result.extra > allowed:
            continue
        if len(result.positions) - result.extra > policy.max_equivalent:
            continue
        match = MatchInfo(
            method=result.method,
            hotlist_plate=entry.plate,
            read_plate=read,
            differing_positions=list(result.positions),
        )
        hits.setdefault((entry.source.value, entry.entry_id, entry.plate), Hit(entry, match))
    # A read one list explains exactly (or by look-alikes) is not also a misread of a
    # near-identical plate of the same list: drop that list's fuzzy hits.
    explained = {h.entry.source for h in hits.values() if h.match.method != "fuzzy"}
    kept = [
        h for h in hits.values() if h.match.method != "fuzzy" or h.entry.source not in explained
    ]
    return sorted(
        kept,
        key=lambda h: (
            h.entry.priority,
            _METHOD_RANK[h.match.method],
            h.entry.source.value,
            h.entry.entry_id,
        ),
    )
