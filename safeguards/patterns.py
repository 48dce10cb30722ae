"""Plate search patterns: the only query language a searcher gets.

A pattern is 1-10 characters of A-Z, 0-9, `*` (any run of characters) and `?` (one
character), with at least `min_literal` letters or digits: no "all reads" pattern such
as `*` or `???????`. Nothing else passes, so nothing a user types can reach Redis or a
regular expression as syntax: the glob we send to ZSCAN and the regex we filter with
are both built from this alphabet only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_PATTERN_LEN", "PlatePattern", "PlatePatternError"]

# NCIC's licence plate field is 10 characters.
MAX_PATTERN_LEN = 10
_ALLOWED = re.compile(r"[A-Z0-9*?]+")
_SEPARATORS = re.compile(r"[ \-]")


class PlatePatternError(ValueError):
    """The pattern is not a valid plate pattern (the message says why)."""


@dataclass(frozen=True, slots=True)
class PlatePattern:
    text: str  # normalised: upper case, no spaces or dashes, runs of * collapsed

    @classmethod
    def parse(cls, raw: str, *, min_literal: int = 3) -> PlatePattern:
        """Validate a user's pattern; spaces and dashes are dropped ("ab-12*" -> "AB12*")."""
        if not isinstance(raw, str):
            raise PlatePatternError("plate pattern must be a string")
        if len(raw) > 2 * MAX_PATTERN_LEN:
            raise PlatePatternError(f"plate pattern longer than {MAX_PATTERN_LEN} characters")
        text = re.sub(r"\*+", "*", _SEPARATORS.sub("", raw.upper()))
        if not text or _ALLOWED.fullmatch(text) is None:
            raise PlatePatternError(
                "plate pattern may only hold A-Z, 0-9, '*' (any characters) and '?' (one "
                "character)"
            )
        if len(text) > MAX_PATTERN_LEN:
            raise PlatePatternError(f"plate pattern longer than {MAX_PATTERN_LEN} characters")
        literal = sum(ch.isalnum() for ch in text)
        if literal < min_literal:
            raise PlatePatternError(
                f"plate pattern needs at least {min_literal} letters or digits: searches for "
                "all reads are not allowed"
            )
        return cls(text)

    @property
    def is_exact(self) -> bool:
        return "*" not in self.text and "?" not in self.text

    @property
    def literal_prefix(self) -> str:
        """Characters before the first wildcard (used for a lexical range scan)."""
        return re.split(r"[*?]", self.text, maxsplit=1)[0]

    @property
    def regex(self) -> re.Pattern[str]:
        body = "".join(
            "[A-Z0-9]*" if ch == "*" else "[A-Z0-9]" if ch == "?" else ch for ch in self.text
        )
        return re.compile(body)

    @property
    def glob(self) -> str:
        """Redis MATCH glob: the same alphabet means the same thing there."""
        return self.text

    def matches(self, plate: str) -> bool:
        return self.regex.fullmatch(plate) is not None
