"""Which of the texts an OCR finds in a frame are licence plates: pure, testable functions.

A road frame holds much more text than plates: the camera's burnt-in clock, the state name
and slogan printed on every plate, dealer frames, badges. Measured on real US photos
(see docs notes "ocr-baseline"), picking "the highest score among 4-8 alphanumerics" was
right only 46% of the time, while these rules came within 0.5 point of the ceiling:

1. drop non-Latin text, clock/date patterns and US state names / plate slogans;
2. prefer 5-8 characters mixing letters and digits, a plate-like box (aspect 1.3-6) and
   the tallest box (the nearest vehicle).

Normalising here only upper-cases and strips non-alphanumerics: look-alike fixes
(O/0, I/1) need the plate format and belong to a later stage.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kernel.plate_text import normalise_plate
from recognizers.base import Alternatives, Box, PlateCandidate

__all__ = [
    "DIGIT_TO_LETTER",
    "MAX_PLATE_LEN",
    "MIN_PLATE_LEN",
    "SLOGANS",
    "US_STATES",
    "TextRead",
    "added_at_ends",
    "choose_candidates",
    "fuse_looks",
    "is_clock",
    "is_latin",
    "is_state_or_slogan",
    "normalise",
    "normalise_alternatives",
    "normalise_read",
    "plate_score",
    "prefer_wider",
    "reject_reason",
]

# US plates carry 2-8 characters; 1-2 character reads are nearly always bolts, stickers
# or fragments, so they are dropped even though a few vanity plates are that short.
MIN_PLATE_LEN = 3
MAX_PLATE_LEN = 8

US_STATES: tuple[str, ...] = (
    "ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "CALIFORNIA", "COLORADO", "CONNECTICUT",
    "DELAWARE", "FLORIDA", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "INDIANA", "IOWA",
    "KANSAS", "KENTUCKY", "LOUISIANA", "MAINE", "MARYLAND", "MASSACHUSETTS", "MICHIGAN",
    "MINNESOTA", "MISSISSIPPI", "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA",
    "NEW HAMPSHIRE", "NEW JERSEY", "NEW MEXICO", "NEW YORK", "NORTH CAROLINA",
    "NORTH DAKOTA", "OHIO", "OKLAHOMA", "OREGON", "PENNSYLVANIA", "RHODE ISLAND",
    "SOUTH CAROLINA", "SOUTH DAKOTA", "TENNESSEE", "TEXAS", "UTAH", "VERMONT", "VIRGINIA",
    "WASHINGTON", "WEST VIRGINIA", "WISCONSIN", "WYOMING",
    "DISTRICT OF COLUMBIA", "PUERTO RICO", "GUAM",
)  # fmt: skip

# Slogans and other words printed on plates around the number (a list, not a model:
# extend it when a state's plates show up in the wrong-pick statistics).
SLOGANS: tuple[str, ...] = (
    "COLORFUL", "COLORFUL COLORADO", "SUNSHINE STATE", "THE LONE STAR STATE", "LONE STAR",
    "EMPIRE STATE", "GRAND CANYON STATE", "BIRTHPLACE OF AVIATION", "AMERICA THE BEAUTIFUL",
    "DMV.CA.GOV", "LAND OF LINCOLN", "LIVE FREE OR DIE", "GARDEN STATE", "FAMOUS POTATOES",
    "SCENIC IDAHO", "VACATIONLAND", "PURE MICHIGAN", "GREAT LAKES", "FIRST IN FLIGHT",
    "FIRST IN FREEDOM", "SPIRIT OF AMERICA", "GREEN MOUNTAIN STATE", "KEYSTONE STATE",
    "VISITPA.COM", "LAND OF ENCHANTMENT", "BIG SKY COUNTRY", "CONSTITUTION STATE",
    "OCEAN STATE", "PEACH STATE", "SHOW ME STATE", "WILD WONDERFUL", "GREAT FACES",
    "GREAT PLACES", "LIFE ELEVATED", "ALOHA STATE", "THE LAST FRONTIER", "NORTH TO THE FUTURE",
    "HEART OF DIXIE", "SPORTSMANS PARADISE", "EVERGREEN STATE", "CROSSROADS OF AMERICA",
    "THE NATURAL STATE", "IN GOD WE TRUST", "TAXATION WITHOUT REPRESENTATION",
    "EXPLORE MINNESOTA", "10000 LAKES", "THE HEART OF IT ALL", "SILVER STATE", "HOME MEANS",
    "THE FIRST STATE", "TOURISM", "PASSENGER", "COMMERCIAL", "TRUCK", "TRAILER", "DEALER",
    "TEMPORARY", "OFFICIAL", "GOVERNMENT", "EXEMPT", "COUNTY",
)  # fmt: skip


# Whole names and slogans, and their long single words ("CANYON", "AVIATION"), squashed.
_PLATE_WORDS: frozenset[str] = frozenset(
    {normalise_plate(s) for s in US_STATES + SLOGANS}
    | {
        normalise_plate(w)
        for s in US_STATES + SLOGANS
        for w in s.split()
        if len(normalise_plate(w)) >= 5
    }
)
# State names worth finding inside a longer read ("COLORFULCOLORADO", "VISITOHIO").
_STATE_KEYS: tuple[str, ...] = tuple(normalise_plate(s) for s in US_STATES)
_NAMES_AND_SLOGANS: tuple[str, ...] = tuple(normalise_plate(s) for s in US_STATES + SLOGANS)
# OCR confuses letters with digits in words too ("C0LORAD0"): compare with digits folded.
DIGIT_TO_LETTER = str.maketrans("0158264", "OISBZGA")
# Blurred small print reads an O as D or Q as readily as 0.
_ROUND_TO_O = str.maketrans("DQ", "OO")

# Clocks and dates burnt in by cameras: 07:41, 07:41:03, 2026-11-22, 22/11/2026, 11.22.26.
# Each stands alone (no letter or digit glued to either end): a Czech plate "1B2:5790"
# has a colon-like separator but is no clock.
_CLOCK_RES = (
    re.compile(r"(?<![A-Z0-9])([01]?\d|2[0-3])\s*:\s*[0-5]\d(?![0-9])", re.IGNORECASE),
    re.compile(r"(?<![A-Z0-9])\d{4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,2}(?![0-9])",
               re.IGNORECASE),
    re.compile(r"(?<![A-Z0-9])\d{1,2}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{2,4}(?![0-9])",
               re.IGNORECASE),
)
# A date with its separators lost: 20261122.
_COMPACT_DATE_RE = re.compile(r"(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")


def normalise(raw: str) -> str:
    """Plate text from OCR text: upper case, ASCII letters and digits only (the kernel's
    one normal form; this name stays for the readers and training that call it)."""
    return normalise_plate(raw)


def normalise_read(raw: str, char_probs: Sequence[float]) -> tuple[str, tuple[float, ...]]:
    """normalise() that keeps one probability per kept character.

    `char_probs` has one value per character of `raw` (as the CTC decoder emits them).
    """
    if len(char_probs) != len(raw):
        raise ValueError("char_probs needs one value per character of raw")
    kept = [(c.upper(), p) for c, p in zip(raw, char_probs, strict=True)]
    kept = [(c, p) for c, p in kept if c.isascii() and c.isalnum()]
    return "".join(c for c, _ in kept), tuple(float(p) for _, p in kept)


def normalise_alternatives(raw: str, alternatives: Alternatives) -> Alternatives:
    """The alternatives of the characters normalise() keeps (none if there are none)."""
    if not alternatives:
        return ()
    if len(alternatives) != len(raw):
        raise ValueError("alternatives needs one entry per character of raw")
    return tuple(a for c, a in zip(raw, alternatives, strict=True) if c.isascii() and c.isalnum())


def is_latin(raw: str) -> bool:
    """True when every letter or digit in `raw` is ASCII (A-Z, a-z, 0-9).

    The recogniser also reads Chinese, Cyrillic, Greek...: such a read is a sign, a badge
    or a confused plate, and stripping the foreign characters would invent a plate.
    """
    return all(c.isascii() for c in raw if c.isalnum())


def is_clock(raw: str) -> bool:
    """True for camera clock/date overlays (checked on the raw text, separators kept)."""
    if any(r.search(raw) for r in _CLOCK_RES):
        return True
    text = normalise(raw)
    return text.isdigit() and len(text) >= 8 and bool(_COMPACT_DATE_RE.match(text))


def is_state_or_slogan(text: str) -> bool:
    """True when a (normalised) read is a state name, a slogan or a piece of one.

    A whole name matches even with letters misread as digits ("C0LORAD0"). Pieces of
    names must have at most one digit: real plates have several, and a plate's letters
    may well spell part of a word.
    """
    text = normalise(text)
    if len(text) < 3:
        return False
    folded = text.translate(DIGIT_TO_LETTER)
    if folded in _PLATE_WORDS:
        return True
    # Small print on a blurred plate loses one more letter ("C0LDRAD0", "L0RADG"): a read
    # of 6+ characters within one substitution of a name or of a piece of one, its round
    # letters folded to O on both sides ("C0LDRADG": D for O, then G for O).
    if len(folded) >= 6 and _near_a_piece(folded):
        return True
    if sum(c.isdigit() for c in text) >= 2:
        return False
    if any(len(key) >= 4 and key in folded for key in _STATE_KEYS):
        return True
    # A partial read of a name or slogan ("OLORADO", "LONESTAR").
    return len(folded) >= 5 and any(folded in name for name in _NAMES_AND_SLOGANS)


def _near_a_piece(word: str) -> bool:
    """`word` equals some same-length piece of a name or slogan but for at most one
    character: one of its one-wildcard forms ("C?LDRAD0") is one of theirs. Both sides
    have their round letters folded to O (_one_wildcard_pieces folds the names)."""
    word = word.translate(_ROUND_TO_O)
    pieces = _one_wildcard_pieces(len(word))
    return any(f"{word[:i]}?{word[i + 1 :]}" in pieces for i in range(len(word)))


@functools.cache
def _one_wildcard_pieces(n: int) -> frozenset[str]:
    """Every n-character piece of every name and slogan, round letters folded to O, with
    each one position in turn replaced by "?" (a set lookup instead of comparing each
    read with every piece: ~4 ms per frame less)."""
    out = set()
    for name in (s.translate(_ROUND_TO_O) for s in _NAMES_AND_SLOGANS):
        for start in range(len(name) - n + 1):
            piece = name[start : start + n]
            out.update(f"{piece[:i]}?{piece[i + 1 :]}" for i in range(n))
    return frozenset(out)


def reject_reason(raw: str) -> str | None:
    """Why `raw` cannot be a plate ("non-latin", "clock", "length", "state"), else None."""
    if not is_latin(raw):
        return "non-latin"
    if is_clock(raw):
        return "clock"
    text = normalise(raw)
    if not MIN_PLATE_LEN <= len(text) <= MAX_PLATE_LEN:
        return "length"
    if is_state_or_slogan(text):
        return "state"
    return None


def plate_score(text: str, confidence: float, box: Box, tallest: int) -> float:
    """How plate-like a (kept) read is, 0..1: a ranking score, not a probability.

    Factors multiply, so one bad sign cannot be outvoted: 5-8 characters; letters and
    digits mixed (digits only is common, letters only is mostly words; an O counts as a
    digit, since it is the same glyph as 0 on most plates: AG0R6T read "AGORGT" must
    outrank a sign read "FIOT8L"); a box 1.3-6 times
    as wide as tall; the box height relative to the tallest read in the frame (the
    nearest plate is the one to read first). The OCR confidence counts, but only in part:
    a crisp slogan must not beat a slightly soft plate.
    """
    n = len(text)
    length_k = 1.0 if 5 <= n <= 8 else 0.75 if n == 4 else 0.4
    has_letter = any(c.isalpha() for c in text)
    has_digit = any(c.isdigit() or c == "O" for c in text)
    mix_k = 1.0 if has_letter and has_digit else 0.6 if has_digit else 0.35
    _, _, w, h = box
    aspect = w / max(1, h)
    aspect_k = 1.0 if 1.3 <= aspect <= 6.0 else 0.5
    height_k = 0.5 + 0.5 * min(1.0, h / max(1, tallest))
    conf_k = 0.4 + 0.6 * max(0.0, min(1.0, confidence))
    return length_k * mix_k * aspect_k * height_k * conf_k


@dataclass(frozen=True)
class TextRead:
    """One text region the OCR read: its raw text, per-character probs and box."""

    raw_text: str
    char_probs: tuple[float, ...]  # one per character of raw_text
    box: Box
    alternatives: Alternatives = ()  # none, or one entry per character of raw_text


# A character that only the wider crop shows must be read at least this surely: bolts,
# frame edges and stickers next to the number read as low-confidence "1", "I" or "L".
WIDER_MIN_CHAR_PROB = 0.9


def prefer_wider(tight: TextRead, wider: TextRead) -> bool:
    """Whether a read of the same text box grown sideways should replace the tight read.

    The detector often stops short of the first or last character (it fades out at the
    ends of a line, e.g. "TC249" for WTC249). The wider read wins only when it is a plate
    read that extends the tight one: the tight text appears in it unchanged and every
    added character is read with high confidence.
    """
    if reject_reason(wider.raw_text) is not None:
        return False
    t_text, _ = normalise_read(tight.raw_text, tight.char_probs)
    w_text, w_probs = normalise_read(wider.raw_text, wider.char_probs)
    added = added_at_ends(t_text, w_text, w_probs)
    return added is not None and min(added) >= WIDER_MIN_CHAR_PROB


def added_at_ends(
    short: str, longer: str, longer_probs: Sequence[float]
) -> tuple[float, ...] | None:
    """The probabilities (of `longer_probs`, one per character of `longer`) of the
    characters `longer` adds around `short`; None unless `longer` is a non-empty `short`
    with characters added at its ends."""
    at = longer.find(short)
    if not short or len(longer) <= len(short) or at < 0:
        return None
    return tuple(longer_probs[:at]) + tuple(longer_probs[at + len(short) :])


# A second look that reads a line without one of its end letters keeps the first read
# where the reader gave that letter at least this probability: the leading I of
# Brazilian serials (INC8808, I at 0.53) was lost to a surer look reading "NC8808".
KEEP_END_LETTER_PROB = 0.5


def drops_end_letter(first: TextRead, second: TextRead) -> bool:
    """Whether `second` reads `first` less its first or last character, a letter that
    `first` read with at least KEEP_END_LETTER_PROB. A product of probabilities favours
    the shorter read whatever the dropped letter's own probability; only letters count
    (a lone digit at an end is often a county or sticker number: Wyoming's "1" of 1 248)."""
    a_text, a_probs = normalise_read(first.raw_text, first.char_probs)
    b_text = normalise(second.raw_text)
    if len(a_text) != len(b_text) + 1 or not b_text:
        return False
    for end, rest in ((0, a_text[1:]), (len(a_text) - 1, a_text[:-1])):
        if rest == b_text and a_text[end].isalpha() and a_probs[end] >= KEEP_END_LETTER_PROB:
            return True
    return False


# Two looks at one plate are fused only when they disagree at this many positions or
# fewer: more means they read different text (a sign, a neighbouring plate).
FUSE_MAX_DIFFERENCES = 2


def fuse_looks(first: TextRead, second: TextRead, box: Box) -> TextRead | None:
    """One read from two looks at the same plate, or None if they cannot be fused.

    The recogniser's glyph errors depend on scale and crop: the frame-wide look read
    4FCW533 as "LFCM533" (F at 0.98, M at 0.48), the zoomed look as "LECW533" (E at
    0.68, W at 0.79). Where two reads of the same length differ at no more than
    FUSE_MAX_DIFFERENCES positions, each position keeps the surer of its two characters
    and its probability; where they agree, the higher probability. Each position's
    alternatives are both looks', each character at its higher probability. Separators
    are dropped (the fused text is normalised). None for reads of different lengths or
    that differ in more positions.
    """
    a_text, a_probs = normalise_read(first.raw_text, first.char_probs)
    b_text, b_probs = normalise_read(second.raw_text, second.char_probs)
    if not a_text or len(a_text) != len(b_text):
        return None
    if sum(a != b for a, b in zip(a_text, b_text, strict=True)) > FUSE_MAX_DIFFERENCES:
        return None
    chars: list[str] = []
    probs: list[float] = []
    for a, pa, b, pb in zip(a_text, a_probs, b_text, b_probs, strict=True):
        char, prob = (a, pa) if pa >= pb else (b, pb)
        chars.append(char)
        probs.append(prob)
    a_alts = normalise_alternatives(first.raw_text, first.alternatives)
    b_alts = normalise_alternatives(second.raw_text, second.alternatives)
    alternatives = (
        tuple(_merge_alternatives(a, b) for a, b in zip(a_alts, b_alts, strict=True))
        if a_alts and b_alts
        else a_alts or b_alts
    )
    return TextRead("".join(chars), tuple(probs), box, alternatives)


def _merge_alternatives(
    a: tuple[tuple[str, float], ...], b: tuple[tuple[str, float], ...]
) -> tuple[tuple[str, float], ...]:
    best: dict[str, float] = {}
    for char, prob in a + b:
        best[char] = max(prob, best.get(char, 0.0))
    return tuple(sorted(best.items(), key=lambda cp: cp[1], reverse=True))


def _same_line_near(box: Box, other: Box) -> bool:
    """`box` sits on the line of `other` and close to it (a continuation of that text)."""
    x, y, w, h = box
    ox, oy, ow, oh = other
    overlap = min(y + h, oy + oh) - max(y, oy)
    if overlap < 0.5 * min(h, oh):
        return False
    gap = max(ox - (x + w), x - (ox + ow), 0)
    return gap <= 3 * max(h, oh)


def choose_candidates(reads: Iterable[TextRead]) -> list[PlateCandidate]:
    """The plate candidates among a frame's reads, most plate-like first.

    Text on the same line as a clock (the camera label after the timestamp, "CAM-12")
    is part of the overlay and dropped with it.
    """
    reads = list(reads)
    clocks = [r.box for r in reads if is_clock(r.raw_text)]
    kept: list[tuple[TextRead, str, tuple[float, ...]]] = []
    for r in reads:
        if reject_reason(r.raw_text) is not None:
            continue
        if any(_same_line_near(r.box, c) for c in clocks):
            continue
        text, probs = normalise_read(r.raw_text, r.char_probs)
        kept.append((r, text, probs))
    if not kept:
        return []
    tallest = max(r.box[3] for r, _, _ in kept)
    scored = []
    for r, text, probs in kept:
        confidence = 1.0
        for p in probs:
            confidence *= p
        alternatives = normalise_alternatives(r.raw_text, r.alternatives)
        candidate = PlateCandidate(text, confidence, probs, r.box, r.raw_text, alternatives)
        scored.append((plate_score(text, confidence, r.box, tallest), candidate))
    scored.sort(key=lambda sc: sc[0], reverse=True)
    return [c for _, c in scored]
