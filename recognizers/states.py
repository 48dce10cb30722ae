"""Which US state issued a plate, from the text printed on it.

A plate's serial alone does not say its state, and a hotlist entry's state does: a car of
another state with the same serial is a known cause of wrong stops. Most US plates print
the state's name (or a slogan only it uses) above or below the serial; the detector finds
that text as a line of its own, and the reader reads it. Here such a line, near the
serial, is matched against the names and slogans, allowing a misread letter or two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from recognizers.base import Box
from recognizers.plate_text import DIGIT_TO_LETTER

# Upper case, letters only (as a line reads once spaces and punctuation are dropped).
STATE_NAMES: dict[str, str] = {
    "AL": "ALABAMA", "AK": "ALASKA", "AZ": "ARIZONA", "AR": "ARKANSAS",
    "CA": "CALIFORNIA", "CO": "COLORADO", "CT": "CONNECTICUT", "DE": "DELAWARE",
    "DC": "WASHINGTONDC", "FL": "FLORIDA", "GA": "GEORGIA", "HI": "HAWAII", "ID": "IDAHO",
    "IL": "ILLINOIS", "IN": "INDIANA", "IA": "IOWA", "KS": "KANSAS", "KY": "KENTUCKY",
    "LA": "LOUISIANA", "ME": "MAINE", "MD": "MARYLAND", "MA": "MASSACHUSETTS",
    "MI": "MICHIGAN", "MN": "MINNESOTA", "MS": "MISSISSIPPI", "MO": "MISSOURI",
    "MT": "MONTANA", "NE": "NEBRASKA", "NV": "NEVADA", "NH": "NEWHAMPSHIRE",
    "NJ": "NEWJERSEY", "NM": "NEWMEXICO", "NY": "NEWYORK", "NC": "NORTHCAROLINA",
    "ND": "NORTHDAKOTA", "OH": "OHIO", "OK": "OKLAHOMA", "OR": "OREGON",
    "PA": "PENNSYLVANIA", "RI": "RHODEISLAND", "SC": "SOUTHCAROLINA", "SD": "SOUTHDAKOTA",
    "TN": "TENNESSEE", "TX": "TEXAS", "UT": "UTAH", "VT": "VERMONT", "VA": "VIRGINIA",
    "WA": "WASHINGTON", "WV": "WESTVIRGINIA", "WI": "WISCONSIN", "WY": "WYOMING",
}
# Slogans that name one state, for plates whose name is small or stylised.
STATE_SLOGANS: dict[str, str] = {
    "LANDOFLINCOLN": "IL", "FAMOUSPOTATOES": "ID", "LIVEFREEORDIE": "NH",
    "GARDENSTATE": "NJ", "EMPIRESTATE": "NY", "SUNSHINESTATE": "FL",
    "GRANDCANYONSTATE": "AZ", "THELASTFRONTIER": "AK", "NORTHTOTHEFUTURE": "AK",
    "FIRSTINFLIGHT": "NC", "FIRSTINFREEDOM": "NC", "BIGSKYCOUNTRY": "MT",
    "LANDOFENCHANTMENT": "NM", "GREENMOUNTAINSTATE": "VT", "KEYSTONESTATE": "PA",
    "VISITPACOM": "PA", "CONSTITUTIONSTATE": "CT", "OCEANSTATE": "RI", "PEACHSTATE": "GA",
    "SHOWMESTATE": "MO", "ALOHASTATE": "HI", "HEARTOFDIXIE": "AL",
    "SPORTSMANSPARADISE": "LA", "EVERGREENSTATE": "WA", "CROSSROADSOFAMERICA": "IN",
    "THENATURALSTATE": "AR", "EXPLOREMINNESOTA": "MN", "10000LAKES": "MN",
    "SILVERSTATE": "NV", "THEFIRSTSTATE": "DE", "DMVCAGOV": "CA",
    "BIRTHPLACEOFAVIATION": "OH", "LIFEELEVATED": "UT", "COLORFULCOLORADO": "CO",
    "TAXATIONWITHOUTREPRESENTATION": "DC", "ENDTAXATIONWITHOUTREPRESENTATION": "DC",
    "DISCOVERTHESPIRIT": "ND", "PEACEGARDENSTATE": "ND", "LEGENDARY": "ND",
    "VACATIONLAND": "ME", "GREATLAKES": "MI", "WILDWONDERFUL": "WV", "GREATFACES": "SD",
    "GREATPLACES": "SD", "AMERICASDAIRYLAND": "WI", "SMILINGFACES": "SC",
    "BEAUTIFULPLACES": "SC", "LONESTARSTATE": "TX", "SCENICIDAHO": "ID",
    "SPIRITOFAMERICA": "MA", "UNBRIDLEDSPIRIT": "KY", "PACIFICWONDERLAND": "OR",
    "THEHEARTOFITALL": "OH", "GREATESTSNOWONEARTH": "UT", "THEGOODLIFE": "NE",
    "STARSFELLONALABAMA": "AL", "NATIVEAMERICA": "OK",
}
_KEYS: tuple[tuple[str, str], ...] = (
    *((name, code) for code, name in STATE_NAMES.items()),
    *STATE_SLOGANS.items(),
)
# A line reads as a name if this similar to it (one or two letters misread in a long name).
_MIN_SIMILAR = 0.75
_MIN_LEN = 4  # shorter reads ("IN", "OK", "ME") are too often other words
# A plate reader reads a state name's round O as 0 (serials use 0): digits are folded to
# the letters they look like, on both sides, before comparing (as the state-name filter
# of recognizers/plate_text.py does).
_FOLDED_KEYS = tuple((key.translate(DIGIT_TO_LETTER), code) for key, code in _KEYS)


@dataclass(frozen=True)
class StateRead:
    state: str  # two-letter code
    confidence: float  # the line's read confidence x how closely it matches the name


def match_state(text: str) -> tuple[str, float] | None:
    """The state a line's text names, with how closely (0..1), or None."""
    if len(text) < _MIN_LEN:
        return None
    text = text.translate(DIGIT_TO_LETTER)
    best: tuple[float, int, str] | None = None
    for key, code in _FOLDED_KEYS:
        # A name inside a longer line ("ALASKA50", "WASHINGTONDC"), or close to it whole.
        similar = 1.0 if key in text else SequenceMatcher(None, text, key).ratio()
        if similar >= _MIN_SIMILAR and (best is None or (similar, len(key)) > best[:2]):
            best = (similar, len(key), code)
    return None if best is None else (best[2], best[0])


def near_plate(plate: Box, line: Box) -> bool:
    """Whether a text line lies on the plate around `plate` (the serial's box): within
    two serial heights above or below it and overlapping it across."""
    px, py, pw, ph = plate
    lx, ly, lw, lh = line
    overlaps_across = lx < px + pw + ph and lx + lw > px - ph
    within_height = ly + lh > py - 2.2 * ph and ly < py + ph + 2.2 * ph
    return overlaps_across and within_height


def read_state(plate: Box, lines: Iterable[tuple[str, float, Box]]) -> StateRead | None:
    """The state named by the text lines on the plate around `plate`: each line as
    (text, read confidence, box). The surest match wins; None if no line names one."""
    best: StateRead | None = None
    for text, confidence, box in lines:
        if not near_plate(plate, box):
            continue
        found = match_state(text)
        if found is not None:
            read = StateRead(found[0], round(confidence * found[1], 3))
            if best is None or read.confidence > best.confidence:
                best = read
    return best
