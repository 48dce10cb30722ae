"""Plate text for matching: normal form, OCR-equivalence canonical keys, the segment
keys of the misread index, and the comparison that says how a read matches a plate.

Pure functions, no Redis. The store keys entries by `canonical(plate)`, so reads that
differ only by OCR look-alikes collide exactly. Entries allowed d extra differing
characters are also indexed by `index_keys`:

* the canonical plate with every choice of d positions wildcarded ("AB?1234"): a read
  with at most d substitutions (same length) has one of these patterns in common with
  the entry, and a read that shares one differs from it in at most d positions, so the
  index hands back only real candidates (a fleet of sequential plates sharing a prefix
  does not fan out to thousands of candidates, as fixed segments would);
* its end-trimmed forms, with d - 1 positions wildcarded: OCR often adds a character at
  an end (an EU country band read as a letter, a state graphic, a bolt) or loses one
  there, and a read one end character longer or shorter, with at most d - 1 other
  substitutions, shares one of these keys with the entry.

* at depth 1, its two halves anchored by length ("a7:AB1", "b7:2345"): a read within
  one substitution agrees with the entry on one half, so a read sharing neither half
  cannot share a one-wildcard key with any entry. lookup.lua probes the halves first
  and builds a read's seven wildcard keys only if one is there: with a few thousand
  urgent entries in a list, that is about one read in twenty.

`compare` then checks the candidates. An extra or missing character counts as one extra
difference and is only recognised at either end of the plate.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Literal

# The normal form and the look-alike classes are shared with reading: they live in the kernel.
from kernel.plate_text import EQUIVALENCE_CLASSES, canonical, normalise_plate

__all__ = [
    "EQUIVALENCE_CLASSES",
    "Comparison",
    "MatchMethod",
    "canonical",
    "compare",
    "end_keys",
    "half_keys",
    "index_keys",
    "normalise_plate",
    "wildcard_keys",
]

MatchMethod = Literal["exact", "ocr_equivalent", "fuzzy"]

def end_keys(key: str, depth: int = 1) -> list[str]:
    """Index keys that let a read one character longer or shorter at an end, and with at
    most depth - 1 other substitutions, find the entry (the end character is one of its
    `depth` differences).

    Depth 1: "x:{key}" (probed with the read minus its first or last character) and
    "m:{key minus first/last character}" (probed with the read itself). Depth 2: the same
    with one position wildcarded, "x1:AB?1234" and "m1:B?1234". lookup.lua builds the
    probes: keep them in step."""
    if len(key) < 2 or depth < 1:
        return []
    if depth == 1:
        return list(dict.fromkeys((f"x:{key}", f"m:{key[1:]}", f"m:{key[:-1]}")))
    w = depth - 1
    tag = f"{w}:"
    keys = [f"x{tag}{k.split(':', 1)[1]}" for k in wildcard_keys(key, w)]
    for trimmed in (key[1:], key[:-1]):
        keys += [f"m{tag}{k.split(':', 1)[1]}" for k in wildcard_keys(trimmed, w)]
    return list(dict.fromkeys(keys))


def index_keys(key: str, depth: int) -> list[str]:
    """Every misread-index key of canonical plate `key` for `depth` extra differences
    (a read sharing one is a candidate; compare() decides), and at depth 1 the half keys
    that gate the one-wildcard probes (half_keys)."""
    if depth < 1:
        return []
    keys = wildcard_keys(key, depth) + end_keys(key, depth)
    return keys + half_keys(key) if depth == 1 else keys


def half_keys(key: str) -> list[str]:
    """The two halves of canonical plate `key`, each tagged with its side and the plate's
    length: "a7:AB1", "b7:2345" (the first half is the shorter). A plate within one
    substitution of `key` has the same length and one half in common with it. None for
    plates shorter than 2 (they have no one-wildcard keys either). lookup.lua builds the
    same keys for reads: keep them in step."""
    n = len(key)
    if n < 2:
        return []
    h = n // 2
    return [f"a{n}:{key[:h]}", f"b{n}:{key[h:]}"]


def wildcard_keys(key: str, depth: int) -> list[str]:
    """Misread-index keys of canonical plate `key` for up to `depth` substituted
    characters: "w{depth}:" + the key with `depth` positions replaced by "?", one per
    choice of positions (7 for a 7-character plate at depth 1, 21 at depth 2; none for
    depth 0 or a plate no longer than depth). lookup.lua builds the same keys for reads:
    keep them in step."""
    n = len(key)
    if depth < 1 or n <= depth:
        return []
    out = []
    for chosen in combinations(range(n), depth):
        chars = list(key)
        for i in chosen:
            chars[i] = "?"
        out.append(f"w{depth}:" + "".join(chars))
    return out


@dataclass(frozen=True, slots=True)
class Comparison:
    """How a read relates to a hotlist plate.

    method: exact (same text), ocr_equivalent (same length, every difference within an
        equivalence class) or fuzzy (anything else).
    extra: differences that are NOT OCR-equivalent substitutions (all substitutions when
        equivalence is off, plus an extra or missing end character): what a source's
        max_extra bounds.
    positions: 0-based indexes into the read of every differing character, look-alikes
        included; a character missing from the read is reported where it is missing.
    """

    method: MatchMethod
    extra: int
    positions: tuple[int, ...]


def compare(read: str, plate: str, *, equivalence: bool = True) -> Comparison | None:
    """How `read` matches `plate` (both normalised): position by position when they have
    the same length; with one extra or missing character at either end (one extra
    difference, reported at its index in the read, or at 0 / len(read) when missing)
    when they differ by one. None for anything else (never a match)."""
    if read == plate:
        return Comparison("exact", 0, ())
    if len(read) == len(plate):
        return _positional(read, plate, 0, equivalence)
    if abs(len(read) - len(plate)) != 1 or min(len(read), len(plate)) == 0:
        return None
    options = []
    if len(read) > len(plate):  # an extra character in the read
        options.append(_positional(read[1:], plate, 1, equivalence, (0,)))
        options.append(_positional(read[:-1], plate, 0, equivalence, (len(read) - 1,)))
    else:  # a character missing from the read
        options.append(_positional(read, plate[1:], 0, equivalence, (0,)))
        options.append(_positional(read, plate[:-1], 0, equivalence, (len(read),)))
    return min(options, key=lambda c: (c.extra, len(c.positions)))


def _positional(
    read: str, plate: str, offset: int, equivalence: bool, gap: tuple[int, ...] = ()
) -> Comparison:
    """Same-length comparison; `offset` maps indexes to the full read, `gap` adds the
    position of an extra/missing end character (one more extra difference)."""
    diff = [i for i, (r, p) in enumerate(zip(read, plate, strict=True)) if r != p]
    if equivalence:
        extra = sum(1 for i in diff if canonical(read[i]) != canonical(plate[i]))
    else:
        extra = len(diff)
    extra += len(gap)
    positions = tuple(sorted({i + offset for i in diff} | set(gap)))
    return Comparison("ocr_equivalent" if extra == 0 else "fuzzy", extra, positions)
