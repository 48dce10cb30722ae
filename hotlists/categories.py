"""What a hotlist record is about: reason codes -> category and priority, and the
records this system refuses to hold at all.

Priority 1 is the most urgent (a child in danger), 5 the least. The tables are policy:
agencies may disagree with a priority, which only changes alert ordering and the
misread tolerance of priority-1 entries (hotlists.match_policy), never whether a plate alerts.

Immigration-related records are refused and counted, never stored: the NCIC
Immigration Violator file is entered by ICE alone and under the Denver terms must never
produce an alert. Every importer refuses on the category text it reads, and the store
refuses again (`entry_refusal`: the category and the reason), so no path can write one.
The vehicle description an importer appends to a reason (after VEHICLE_MARK) is not
read for this: "Ice White" is a colour, and refusing an Amber alert over it would be
the worst possible false positive.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "CCIC_CATEGORIES",
    "NCIC_IMMIGRATION_CODE",
    "NCIC_LIST_CODES",
    "VEHICLE_MARK",
    "Category",
    "agency_category",
    "ccic_category",
    "entry_refusal",
    "immigration_refusal",
    "with_vehicle",
]


@dataclass(frozen=True, slots=True)
class Category:
    slug: str  # stable, machine-readable (HotlistEntry.category)
    label: str  # what a dispatcher reads (start of HotlistEntry.reason)
    priority: int


# Column 0 of the NCIC LPR extract.
NCIC_LIST_CODES: dict[str, Category] = {
    "A": Category("amber_alert", "Amber alert", 1),
    "M": Category("missing_person", "Missing person", 2),
    "W": Category("wanted_person", "Wanted person", 2),
    "F": Category("felony_vehicle", "Felony vehicle", 2),
    "L": Category("violent_person", "Violent person", 2),
    "T": Category("gang_terrorist", "Gang/terrorist member", 2),
    "V": Category("stolen_vehicle", "Stolen vehicle", 3),
    "P": Category("stolen_plate", "Stolen plate", 3),
    "R": Category("stolen_canadian_vehicle", "Stolen Canadian vehicle", 3),
    "H": Category("protection_order", "Protection order", 4),
    "K": Category("protective_interest", "Protective interest", 4),
    "C": Category("supervised_release", "Supervised release", 5),
    "X": Category("sex_offender", "Sex offender", 5),
}
# The code the Immigration Violator file would carry in the extract. The public sources
# list the file but not its code: "I" is an assumption; any other unknown code is
# rejected as malformed anyway, so an immigration record can never slip in as a new code.
NCIC_IMMIGRATION_CODE = "I"

# Colorado CCIC category texts (the field is 22 characters, so long names come
# truncated: matched by prefix, case-insensitively).
CCIC_CATEGORIES: tuple[tuple[str, Category], ...] = (
    ("stolen/car jacking", Category("carjacking", "Stolen/carjacking", 2)),
    ("felony warrant", Category("felony_warrant", "Felony warrant", 2)),
    ("used in felony", Category("used_in_felony", "Used in felony", 2)),
    ("attempt to locate", Category("attempt_to_locate", "Attempt to locate", 3)),
    ("local warrant", Category("local_warrant", "Local warrant", 3)),
    ("stolen vehicle", Category("stolen_vehicle", "Stolen vehicle", 3)),
    ("stolen plate", Category("stolen_plate", "Stolen plate", 3)),
    ("used in misdemeanor", Category("used_in_misdemeanor", "Used in misdemeanor", 4)),
    ("reported lost", Category("reported_lost", "Reported lost", 4)),
    ("sexual offender", Category("sex_offender", "Sexual offender", 5)),
)

# Agency lists carry free text: the first keyword found sets the priority.
_AGENCY_KEYWORDS: tuple[tuple[str, int], ...] = (
    (r"amber|abduct|kidnap|missing child|endangered", 1),
    (r"missing|wanted|warrant|felony|armed|violent|homicide|carjack|robbery|gang", 2),
    (r"stolen|locate|suspect", 3),
    (r"protect|lost", 4),
    (r"offender|supervis|parole|probation", 5),
)
_AGENCY_DEFAULT_PRIORITY = 3

_IMMIGRATION_TERMS = (
    "immigration", "immigrant", "immigrants", "ice", "deport", "deported", "deportation",
    "deportable", "undocumented", "illegal alien", "illegal aliens", "alien registration",
    "visa overstay", "removal order", "removal proceedings", "uscis",
)  # fmt: skip


def _words(text: str) -> str:
    """' lower case words ' for whole-word matching; "I.C.E." reads "ice"."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").replace(".", "")
    return " " + " ".join(w for w in re.split(r"[^0-9a-z]+", text.casefold()) if w) + " "


# Cheap pre-screen: every term above contains one of these (checked on ASCII text; any
# other text takes the full, normalising path). Imports check a million entries.
# (On lower-cased text: re.IGNORECASE measured 7x slower.)
_QUICK = re.compile(r"immig|ice|i\.c\.e|deport|undocumented|alien|overstay|removal|uscis")


def immigration_refusal(*texts: str | None) -> str | None:
    """The immigration term one of `texts` names (whole words), or None."""
    for t in texts:
        if t and (not t.isascii() or _QUICK.search(t.lower())):
            break
    else:
        return None
    joined = _words(" ".join(t for t in texts if t))
    for term in _IMMIGRATION_TERMS:
        if f" {term} " in joined:
            return term
    return None


# Separates an entry's reason (what it is listed for) from the vehicle description.
VEHICLE_MARK = " | vehicle: "


def with_vehicle(reason: str, vehicle: str) -> str:
    """`reason` plus the vehicle description a dispatcher compares with the image."""
    return f"{reason}{VEHICLE_MARK}{vehicle}" if vehicle else reason


# Cached: a list repeats a few reason texts ("Stolen vehicle (incident 2025-03-14)")
# across a million rows, and the check is ~10% of a 1M-entry import.
@functools.lru_cache(maxsize=65536)
def entry_refusal(reason: str | None, category: str | None) -> str | None:
    """The immigration term an entry's category or reason names, the vehicle
    description excepted (see VEHICLE_MARK), or None."""
    if reason:
        cut = reason.find(VEHICLE_MARK)
        if cut >= 0:
            reason = reason[:cut]
    return immigration_refusal(reason, category)


def _slug(text: str) -> str:
    return "_".join(re.findall(r"[0-9a-z]+", text.casefold()))[:40] or "other"


def ccic_category(text: str) -> Category | None:
    """The known CCIC category `text` starts with, or None."""
    folded = " ".join(text.casefold().split())
    for prefix, category in CCIC_CATEGORIES:
        if folded.startswith(prefix) or (len(folded) >= 12 and prefix.startswith(folded)):
            return category
    return None


def agency_category(text: str) -> Category:
    """Category of an agency list's free-text reason (never None: the text is kept)."""
    folded = text.casefold()
    priority = _AGENCY_DEFAULT_PRIORITY
    for pattern, value in _AGENCY_KEYWORDS:
        if re.search(pattern, folded):
            priority = value
            break
    label = " ".join(text.split()) or "Agency list"
    return Category(_slug(text) if text.strip() else "agency_list", label, priority)
