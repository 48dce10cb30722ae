"""Reading printed glyphs the way US plate issuers use them.

The recognition model reads free text and often says "O" for a zero: on most plate fonts
the two are the same glyph. US standard-issue serials never use the letter O (none of the
development photos' plates has one), so O is read as 0. I and Q are rarer but real: some
states use them inside a letter block (California 6XIU641, 5TQY867), so they are read as
1 and 0 only where no letter stands next to them (a digit block: 7I23 -> 7123).

California's 4 has an open top, and the recognition model reads it as L at the start of
the state's 1ABC234 serial ("LEEU387" for 4EEU387, with L at 0.98). No US standard-issue
format is four letters and three digits, so a leading L there is read as 4.

Vanity plates that really use these letters are then read with digits, which hotlist
matching's OCR-equivalence classes (0/O, 1/I) still match.

A graphic printed just left of the serial (Arizona's cactus, a state outline, a heart)
is read as one more character, nearly always 1, 4, 7, I or L: "4ASC7399". The common
seven-character formats (ABC1234, 1ABC234) have no eight-character form, so such a read
is the serial with the graphic in front.
"""

from __future__ import annotations

import re

from recognizers.serial_formats import layout_pattern

__all__ = ["leading_graphic", "standard_issue"]

# Only the two commonest seven-character layouts (of serial_formats.US_SERIAL_FORMATS):
# widening the rule to every layout drops real first characters.
_SEVEN_CHAR_SERIALS = layout_pattern("LLLDDDD", "DLLLDDD")
_GRAPHIC_READ_AS = frozenset("147IL")

_DIGIT_FOR = {"I": "1", "Q": "0"}
# L then three letters and three digits: California's 1ABC234 with its open-top 4.
_OPEN_TOP_FOUR = re.compile(r"L[A-Z]{3}[0-9]{3}")


def standard_issue(text: str) -> str:
    """`text` with O read as 0, I and Q read as 1 and 0 when no neighbour is a letter
    (other than I or Q themselves, which may be digits too), and the L of L + ABC123 read
    as California's 4."""
    chars = list(text.replace("O", "0"))
    out = chars.copy()
    for i, c in enumerate(chars):
        if c not in _DIGIT_FOR:
            continue
        neighbours = chars[max(0, i - 1) : i] + chars[i + 1 : i + 2]
        if not any(n.isalpha() and n not in _DIGIT_FOR for n in neighbours):
            out[i] = _DIGIT_FOR[c]
    read = "".join(out)
    return "4" + read[1:] if _OPEN_TOP_FOUR.fullmatch(read) else read


def leading_graphic(text: str) -> bool:
    """Whether the first character of a standard-issue read is a graphic, not part of the
    serial: eight characters, the first a graphic's usual reading, the other seven one
    of the common seven-character formats."""
    return (
        len(text) == 8
        and text[0] in _GRAPHIC_READ_AS
        and _SEVEN_CHAR_SERIALS.fullmatch(text[1:]) is not None
    )
