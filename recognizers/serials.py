"""Reading printed glyphs the way plate issuers use them.

Most US states never put I, O or Q in a standard-issue serial because, printed, they are
indistinguishable from 1 and 0; the recognition model, reading free text, often says
"O" for a zero. Reading those glyphs as digits fixes that for standard plates. Vanity
plates that really use O or I are then read with 0 or 1, which hotlist matching's
OCR-equivalence classes (0/O, 1/I) still match.
"""

from __future__ import annotations

_AS_DIGITS = str.maketrans("OIQ", "010")


def standard_issue(text: str) -> str:
    """`text` with I, O and Q read as the digits they print as."""
    return text.translate(_AS_DIGITS)
