"""Plate keys and comparison (pure functions) and the matching policy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotlists.match_policy import (
    DEFAULT_POLICIES,
    POLICY_ENV,
    PolicyConfigError,
    SourcePolicy,
    load_policies,
)
from hotlists.plates import (
    EQUIVALENCE_CLASSES,
    canonical,
    compare,
    end_keys,
    half_keys,
    index_keys,
    normalise_plate,
    wildcard_keys,
)
from kernel.contracts import HotlistSource

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
plates = st.text(alphabet=ALNUM, min_size=2, max_size=10)


def test_normalise_and_canonical() -> None:
    assert normalise_plate(" ab-12 3 ") == "AB123"
    # Every look-alike maps to its class representative; other characters stay.
    assert canonical("B0SS") == canonical("8OS5") == "8055"
    assert canonical("ODQ0") == "0000" and canonical("IL1") == "111"
    assert canonical("ZGA") == "264" and canonical("XYWKM") == "XYWKM"
    for cls in EQUIVALENCE_CLASSES:
        assert len({canonical(c) for c in cls}) == 1


def test_compare_methods_and_positions() -> None:
    c = compare("ABC123", "ABC123")
    assert c is not None and (c.method, c.extra, c.positions) == ("exact", 0, ())
    eq = compare("AB0123", "ABO123")
    assert eq is not None and (eq.method, eq.extra, eq.positions) == ("ocr_equivalent", 0, (2,))
    fz = compare("ABX12B", "ABC128")  # X/C: a real difference; B/8: a look-alike
    assert fz is not None and (fz.method, fz.extra, fz.positions) == ("fuzzy", 1, (2, 5))
    off = compare("AB0123", "ABO123", equivalence=False)
    assert off is not None and (off.method, off.extra) == ("fuzzy", 1)
    assert compare("ABC1234", "ABC12") is None  # two characters apart: never


def test_compare_extra_or_missing_end_character() -> None:
    extra_front = compare("RRK828AG", "RK828AG")  # EU country band read as a letter
    assert extra_front is not None and (extra_front.extra, extra_front.positions) == (1, (0,))
    extra_back = compare("ABC1234X", "ABC1234")
    assert extra_back is not None and extra_back.positions == (7,)
    missing_front = compare("TC249", "WTC249")
    assert missing_front is not None and (missing_front.extra, missing_front.positions) == (1, (0,))
    missing_back = compare("ABC12", "ABC123")
    assert missing_back is not None and missing_back.positions == (5,)
    # An end character plus a look-alike: still one extra difference.
    both = compare("XAB0123", "ABO123")
    assert both is not None and (both.extra, both.positions) == (1, (0, 3))
    # A character missing in the middle is not recognised as one difference.
    middle = compare("AB123", "ABC123")
    assert middle is not None and middle.extra > 1


@settings(max_examples=300, deadline=None)
@given(plate=plates, data=st.data())
def test_wildcard_keys_find_exactly_the_plates_within_depth(
    plate: str, data: st.DataObject
) -> None:
    """A same-length plate shares a wildcard key of depth d with the original if and only
    if it differs in at most d positions: the index finds every candidate, and only
    candidates."""
    depth = data.draw(st.integers(1, 2))
    if len(plate) <= depth:
        assert wildcard_keys(plate, depth) == []
        return
    positions = data.draw(st.lists(st.integers(0, len(plate) - 1), max_size=depth + 1,
                                   unique=True))
    read = list(plate)
    for i in positions:
        read[i] = data.draw(st.sampled_from(ALNUM))
    differing = sum(a != b for a, b in zip(read, plate, strict=True))
    shared = set(wildcard_keys("".join(read), depth)) & set(wildcard_keys(plate, depth))
    assert bool(shared) == (differing <= depth)


def test_wildcard_keys_cover_every_choice_of_positions() -> None:
    assert wildcard_keys("AB12", 1) == ["w1:?B12", "w1:A?12", "w1:AB?2", "w1:AB1?"]
    assert len(wildcard_keys("ABC1234", 2)) == 21
    assert wildcard_keys("ABC1234", 0) == []
    assert wildcard_keys("AB", 2) == []


def test_end_keys_pair_up_reads_one_character_off() -> None:
    entry = "RK828AG"
    read_longer = "RRK828AG"
    read_shorter = "K828AG"
    read_keys_longer = {f"x:{read_longer[1:]}", f"x:{read_longer[:-1]}", f"m:{read_longer}"}
    read_keys_shorter = {f"x:{read_shorter[1:]}", f"x:{read_shorter[:-1]}", f"m:{read_shorter}"}
    assert read_keys_longer & set(end_keys(entry))
    assert read_keys_shorter & set(end_keys(entry))
    assert index_keys(entry, 0) == []
    assert set(index_keys(entry, 1)) == (
        set(wildcard_keys(entry, 1)) | set(end_keys(entry)) | set(half_keys(entry))
    )
    assert not set(index_keys(entry, 2)) & set(half_keys(entry))  # they gate depth 1 only


@settings(max_examples=300, deadline=None)
@given(plate=plates, data=st.data())
def test_a_plate_one_substitution_away_shares_a_half(plate: str, data: st.DataObject) -> None:
    """lookup.lua probes a read's one-wildcard keys only if one of its halves is indexed:
    sound only if every same-length plate within one substitution shares a half."""
    i = data.draw(st.integers(0, len(plate) - 1))
    read = plate[:i] + data.draw(st.sampled_from(ALNUM)) + plate[i + 1 :]
    if len(plate) < 2:
        assert half_keys(plate) == []
        return
    assert set(half_keys(read)) & set(half_keys(plate))
    assert half_keys("ABC1234") == ["a7:ABC", "b7:1234"]
    assert not set(half_keys("ABC1234")) & set(half_keys("ABC12345"))  # lengths differ


# --- policy ------------------------------------------------------------------------------


def test_default_policies() -> None:
    assert DEFAULT_POLICIES[HotlistSource.NCMEC].max_extra == 1
    for src in (HotlistSource.NCIC, HotlistSource.CCIC, HotlistSource.LOCAL):
        p = DEFAULT_POLICIES[src]
        assert p.max_extra == 0 and p.urgent_max_extra == 1 and p.ocr_equivalence
    ncic = DEFAULT_POLICIES[HotlistSource.NCIC]
    assert ncic.extra_for(priority=1, length=7) == 1  # an Amber alert in NCIC
    assert ncic.extra_for(priority=3, length=7) == 0  # a stolen car
    assert ncic.extra_for(priority=1, length=4) == 0  # too short to guess at
    assert ncic.max_equivalent == 1


def test_policy_overrides_from_env() -> None:
    policies = load_policies(env={POLICY_ENV: '{"local": {"max_extra": 2}, '
                                              '"NCIC": {"ocr_equivalence": false}}'})
    assert policies[HotlistSource.LOCAL].max_extra == 2
    assert policies[HotlistSource.LOCAL].urgent_max_extra == 1  # untouched fields kept
    assert policies[HotlistSource.NCIC].ocr_equivalence is False
    assert policies[HotlistSource.NCMEC] == DEFAULT_POLICIES[HotlistSource.NCMEC]
    assert load_policies(env={}) == dict(DEFAULT_POLICIES)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "object keyed by source"),
        ('{"FBI": {}}', "unknown source"),
        ('{"NCIC": {"max_extra": 3}}', "max_extra"),
        ('{"NCIC": {"fuzzy": true}}', "fuzzy"),
        ('{"NCIC": 1}', "must map to an object"),
    ],
)
def test_policy_override_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyConfigError, match=message):
        load_policies(text)


def test_source_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        SourcePolicy(max_extra=-1)
