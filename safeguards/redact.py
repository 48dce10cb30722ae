"""Free text scrubbed before it enters the audit trail, which is kept indefinitely.

A verification note ("plate 7ABC123, driver DOB 04/12/1985") may say things the 30-day
stores may keep but the indefinite audit must not: plates and dates of birth. The note
is kept whole with the verification (30 days); the audit records it with plate-like
tokens and dates replaced. A keyword-free screen, so it errs on the side of scrubbing
(an offence code with letters and digits is scrubbed too).
"""

from __future__ import annotations

import re

__all__ = ["scrub_note"]

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_DATES = [
    re.compile(r"\b\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,4}\b"),  # 04/12/1985, 1985-04-12
    re.compile(rf"\b\d{{1,2}}\s+(?:{_MONTHS})[a-z]*\.?,?\s+\d{{2,4}}\b", re.I),  # 5 Jan 1980
    re.compile(rf"\b(?:{_MONTHS})[a-z]*\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{2,4}}\b", re.I),
]
# What a DOB marker introduces, down to a bare year ("born 1985").
_DOB = re.compile(r"\b(?:d\.?\s?o\.?\s?b\.?|date\s+of\s+birth|born)\b[:\s]*(?:\d{4}\b)?",
                  re.I)
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
# "ABC 123": a plate written with a space, in capitals.
_SPACED = re.compile(r"\b(?:[A-Z]{2,4} \d{2,4}|\d{1,3} ?[A-Z]{3} ?\d{2,4})\b")
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)", re.I)


def scrub_note(text: str) -> str:
    """`text` with dates (and what a DOB marker introduces) and plate-like tokens
    replaced by [date], [dob] and [plate]."""
    for pattern in _DATES:
        text = pattern.sub("[date]", text)
    text = _DOB.sub("[dob] ", text).replace("[dob] [date]", "[dob]")
    text = _SPACED.sub("[plate]", text)
    return _TOKEN.sub(_plate_like, text)


def _plate_like(match: re.Match[str]) -> str:
    token = match.group(0)
    bare = token.replace("-", "")
    if (3 <= len(bare) <= 10 and any(c.isdigit() for c in bare)
            and any(c.isalpha() for c in bare) and not _ORDINAL.fullmatch(bare)):
        return "[plate]"
    return token
