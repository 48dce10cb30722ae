"""Fitting a read to a US standard-issue serial format, with the recogniser's own
second choices.

Most US plates carry a serial in one of a few letter/digit layouts per state (Missouri
AB1-C2D, California 1ABC234, most of the east ABC1234). The recognition model reads free
text, so where a glyph is ambiguous at low resolution it may pick the letter where the
layout needs a digit: Missouri's CJ1-P5G read "CJI-P5G" (I 0.89, 1 0.51 in another
look), AG0-R6T read "AG0-RGT" (G 0.90, 6 0.39). A read that fits no layout, but would
fit one if a character were the model's own alternative there, is read that way when
the alternative is likely enough (see VANITY_ODDS).

Vanity plates fit no layout by design. A vanity read is changed only when the model
itself found the layout's character nearly as likely; hotlist matching's look-alike
classes (1/I, 6/G, 8/B, ...) match a listed vanity plate either way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from recognizers.base import PlateCandidate

__all__ = [
    "US_SERIAL_FORMATS",
    "VANITY_ODDS",
    "fit_serial_format",
    "fits_a_format",
    "layout_pattern",
]

# Layouts as L (letter) and D (digit), with a state that issues each (many issue several,
# and many layouts are shared). Only layouts mixing letters and digits: an all-digit
# layout would turn any one-letter misread into a number.
US_SERIAL_FORMATS: tuple[str, ...] = (
    "LLLDDDD",  # ABC1234: AZ, GA, MI, NY, NC, OH, PA, TX, VA, WA, WI, ...
    "DLLLDDD",  # 1ABC234: CA
    "LLLDDD",  # ABC123: CO, FL, HI, IA, NM, OK, SC, VT, ...
    "DDDLLL",  # 123ABC: AR, IN, KS, KY, LA, MN, ND, OR, ...
    "LLLLDD",  # ABCD12: CO, FL
    "LLDLDL",  # AB1C2D: MO
    "LLDDDDD",  # AB12345: CT, IL
    "DLLDDDD",  # 1AB2345: MD
    "DLLLDD",  # 1ABC23: MA
    "DLLDDD",  # 1AB234: MA, WV
    "DDDDLL",  # 1234AB: ME
    "DDDLDD",  # 123A45: NV
    "LDDLLL",  # A12BCD: NJ
    "LLLDDL",  # ABC12D: NJ
    "LLDLDDD",  # AB1C234: TX (earlier)
    "LLDDDD",  # AB1234: DC
)


def layout_pattern(*layouts: str) -> re.Pattern[str]:
    """A regex matching any of `layouts` (L a letter, D a digit); use with fullmatch."""
    return re.compile("|".join(f.replace("L", "[A-Z]").replace("D", "[0-9]") for f in layouts))


_LAYOUTS = layout_pattern(*US_SERIAL_FORMATS)

# The odds that a read fitting no layout is a vanity plate rather than a standard serial
# misread, per character to change: an alternative is taken when the model gives it more
# than this times the probability of what it read. About one plate in ten on US roads is
# a vanity plate. The new character's probability is p_alt / (p_alt + VANITY_ODDS *
# p_read): ~0.5 at the limit, near 1 when the model all but agreed. (For a look-alike of
# what was read, 1 for I, read_frame then counts the whole class: lookalike_confidence.)
VANITY_ODDS = 0.1
# At most this many characters change: a read two layouts away is another text.
MAX_CHANGES = 1


def fits_a_format(text: str) -> bool:
    """Whether `text` is one of the US standard-issue layouts."""
    return _LAYOUTS.fullmatch(text) is not None


@dataclass(frozen=True)
class _Fit:
    text: str
    probs: tuple[float, ...]
    odds: float  # product of p_alt / p_read over the changed characters


def _fit(candidate: PlateCandidate, layout: str) -> _Fit | None:
    chars = list(candidate.text)
    probs = list(candidate.char_confidences)
    odds = 1.0
    changes = 0
    for i, (char, kind) in enumerate(zip(candidate.text, layout, strict=True)):
        wanted = str.isdigit if kind == "D" else str.isalpha
        if wanted(char):
            continue
        changes += 1
        options = [(c, p) for c, p in candidate.char_alternatives[i] if wanted(c)]
        if changes > MAX_CHANGES or not options:
            return None
        alt, p_alt = max(options, key=lambda cp: cp[1])
        p_read = max(probs[i], 1e-6)
        if p_alt <= VANITY_ODDS * p_read:
            return None
        chars[i] = alt
        probs[i] = p_alt / (p_alt + VANITY_ODDS * p_read)
        odds *= p_alt / p_read
    return _Fit("".join(chars), tuple(probs), odds)


def fit_serial_format(candidate: PlateCandidate) -> PlateCandidate:
    """`candidate` read in the likeliest US layout one alternative character away, if it
    fits none as read and the model's alternative is likely enough; else unchanged.
    Candidates without alternatives (the PaddleOCR backend) are returned unchanged."""
    if not candidate.char_alternatives or fits_a_format(candidate.text):
        return candidate
    same_length = (f for f in US_SERIAL_FORMATS if len(f) == len(candidate.text))
    fits = [fit for layout in same_length if (fit := _fit(candidate, layout))]
    if not fits:
        return candidate
    best = max(fits, key=lambda f: f.odds)
    return replace(
        candidate,
        text=best.text,
        char_confidences=best.probs,
        confidence=math.prod(best.probs),
    )
