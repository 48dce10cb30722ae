"""The safeguards policy file: what the contract allows, in one validated document.

`load_policy()` reads `default_policy.yaml` (or the file named by ALPR_SG_POLICY_FILE)
and refuses a policy that breaks a contract term: retention above 30 days without an
explicit, justified exception, a federal body among the MOU agencies, a prohibited
purpose that is also a permitted offence. The checks live here so that every entry
point (API, CLI, ingest) gets the same refusal. Requests read the file again each time
(through `policy_audit.AuditedPolicy`), so an edit applies from the next request on.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DAY_MS",
    "DAY_S",
    "MAX_RETENTION_DAYS",
    "Policy",
    "PolicyError",
    "PortalText",
    "ProhibitedPurpose",
    "agency_id_for",
    "load_policy",
    "mixed_script_word",
    "normalise_text",
    "read_policy",
    "skeleton",
]

DAY_S = 86_400
# Letters of a case number that say it names no case ("TEST-1", "NA-1", "XXX-2").
_PLACEHOLDER_CASE_WORDS = frozenset({"TEST", "TESTING", "NA", "NONE", "NULL", "XXX", "XX",
                                     "X", "TBD", "ABC", "ASDF", "QWERTY", "DUMMY", "FAKE"})
DAY_MS = DAY_S * 1000
# Denver: "Flock data is only retained for 30 days."
MAX_RETENTION_DAYS = 30


class PolicyError(ValueError):
    """The policy file is invalid or breaks a contract term."""


@lru_cache(maxsize=1)
def _ascii_look_alikes() -> dict[str, str]:
    """Each non-ASCII character that Unicode's confusables data (UTS #39, shipped by
    confusable-homoglyphs) says looks like one ASCII letter or digit -> that character,
    lower case: Cyrillic "о" -> "o", Greek "ι" -> "i"."""
    from confusable_homoglyphs.confusables import confusables_data

    found: dict[str, str] = {}
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in homoglyphs:
            c = glyph["c"]
            if len(c) == 1 and c.isascii() and c.isalnum():
                found[char] = c.casefold()
                break
    return found


def skeleton(text: str) -> str:
    """Text as the screen compares it: compatibility forms folded and marks stripped
    (NFKD: "immigrátion" -> "immigration"), format characters (zero-width spaces)
    dropped, case folded, then every non-ASCII character that looks like an ASCII one
    replaced by it (UTS #39 confusables: "deроrtation" with Cyrillic о and р ->
    "deportation", Greek/Cyrillic "ΙСЕ" -> "ice")."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Me", "Cf"))
    look_alikes = _ascii_look_alikes()
    return "".join(look_alikes.get(ch, ch) for ch in text.casefold())


def normalise_text(text: str) -> str:
    """Lower-case words separated by single spaces, for keyword screening.

    The `skeleton` first (look-alike letters, marks, zero-width characters), then dots
    removed so "I.C.E." reads "ice" and "U.S." "us"; any other non-alphanumeric
    character separates words ("ex-partner" -> "ex partner").
    """
    text = skeleton(text).replace(".", "")
    words = re.split(r"[^0-9a-z]+", text)
    return " ".join(w for w in words if w)


def mixed_script_word(text: str) -> str | None:
    """The first word of `text` that mixes scripts after marks are stripped (Latin
    with Cyrillic look-alikes, say), or None. A name written wholly in another script
    passes; a word spelt to slip past the screen does not."""
    from confusable_homoglyphs.confusables import is_mixed_script

    stripped = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in stripped if unicodedata.category(ch) not in ("Mn", "Me"))
    for word in re.split(r"[\s.,;:!?()\[\]\"'/-]+", stripped):
        if word and is_mixed_script(word):
            return word
    return None


def agency_id_for(name: str) -> str:
    """"CO - Fort Collins PD" -> "co-fort-collins-pd"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _contains_phrase(normalised_text: str, phrase: str) -> bool:
    needle = normalise_text(phrase)
    return bool(needle) and f" {needle} " in f" {normalised_text} "


class ProhibitedPurpose(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    keywords: list[str] = Field(min_length=1)


class PortalText(BaseModel):
    """The transparency portal's own words (the Denver portal's sections): shown as
    written. `effective_date` is the portal's "Last Updated"; figures say "as of" the
    time they were computed. Empty texts fall back to the page's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    effective_date: date | None = None
    overview: str = ""
    acceptable_use_policy: str = ""
    access_policy: str = ""
    hotlist_policy: str = ""
    non_law_enforcement_access: str = ""
    owned_cameras: int | None = Field(None, ge=0, description="cameras the agency owns")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: float = Field(MAX_RETENTION_DAYS, gt=0)
    allow_retention_above_30_days: bool = False
    retention_justification: str = ""
    owning_agency: str = Field(min_length=1)
    mou_agencies: list[str] = Field(default_factory=list)
    federal_acronyms: list[str] = Field(default_factory=list)
    federal_phrases: list[str] = Field(default_factory=list)
    federal_name_prefixes: list[str] = Field(default_factory=list)
    permitted_offences: dict[str, str] = Field(min_length=1)
    prohibited_purposes: dict[str, ProhibitedPurpose] = Field(min_length=1)
    max_results: int = Field(200, ge=1, le=1000)
    min_literal_plate_chars: int = Field(3, ge=3, le=10)
    max_searches_per_user_per_hour: int = Field(120, ge=1)
    # Distinct reads released per UTC day, across searches: slicing the window into
    # several searches cannot take more (`quotas.py`).
    max_reads_per_case_per_day: int = Field(200, ge=1)
    max_reads_per_user_per_day: int = Field(1000, ge=1)
    max_reads_per_agency_per_day: int = Field(5000, ge=1)
    case_number_pattern: str = r"^[A-Z0-9][A-Z0-9-]{3,31}$"
    min_reason_chars: int = Field(15, ge=1)
    min_reason_words: int = Field(3, ge=1)
    hotlists_alerted_on: list[str] = Field(default_factory=list)
    whats_detected: str = ""
    whats_not_detected: str = ""
    portal: PortalText = PortalText()

    @field_validator("mou_agencies")
    @classmethod
    def _trim_names(cls, names: list[str]) -> list[str]:
        # The portal's list has stray trailing spaces ("CO - Keenesburg PD ").
        return [" ".join(n.split()) for n in names if n.strip()]

    @field_validator("case_number_pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"case_number_pattern does not compile: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _contract_terms(self) -> Self:
        if self.retention_days > MAX_RETENTION_DAYS:
            if not self.allow_retention_above_30_days:
                raise ValueError(
                    f"retention_days={self.retention_days:g} exceeds the {MAX_RETENTION_DAYS}-"
                    "day limit; set allow_retention_above_30_days: true with a "
                    "retention_justification to override"
                )
            if len(self.retention_justification.strip()) < 20:
                raise ValueError(
                    "allow_retention_above_30_days needs a retention_justification "
                    "(at least 20 characters) saying which agreement allows it"
                )
        federal = [name for name in self.mou_agencies if self.federal_marker(name)]
        if federal:
            raise ValueError(f"federal bodies cannot be MOU agencies: {federal}")
        if self.federal_marker(self.owning_agency):
            raise ValueError("the owning agency cannot be a federal body")
        overlap = set(self.permitted_offences) & set(self.prohibited_purposes)
        if overlap:
            raise ValueError(f"offences both permitted and prohibited: {sorted(overlap)}")
        for offence, label in self.permitted_offences.items():
            if purpose := self.screen(f"{offence} {label}"):
                raise ValueError(f"permitted offence {offence!r} matches prohibited {purpose}")
        return self

    # --- derived values ----------------------------------------------------------------

    @property
    def retention_s(self) -> int:
        return int(self.retention_days * DAY_S)

    @property
    def max_retention_s(self) -> int:
        """What the stores accept: 30 days unless the policy allows more."""
        if self.allow_retention_above_30_days:
            return max(self.retention_s, MAX_RETENTION_DAYS * DAY_S)
        return MAX_RETENTION_DAYS * DAY_S

    @cached_property
    def mou_agency_ids(self) -> frozenset[str]:
        """Agency ids (`agency_id_for`) of the MOU agencies: the registry's keys."""
        return frozenset(agency_id_for(name) for name in self.mou_agencies)

    def has_mou(self, agency_id: str) -> bool:
        """Whether the agency is on this policy's MOU list: the only source of MOU access."""
        return agency_id in self.mou_agency_ids

    @cached_property
    def terms(self) -> dict[str, Any]:
        """Every term, in a canonical form: a change to any of them is audited
        (`policy_audit`). MOU agencies by id, since that is what the access check
        compares (a respelt name is no change); the federal markers sorted, since their
        order means nothing. Other lists keep their order (screening and display use it)."""
        terms = self.model_dump(mode="json", exclude={"mou_agencies"})
        terms["mou_agency_ids"] = sorted(self.mou_agency_ids)
        for name in ("federal_acronyms", "federal_phrases", "federal_name_prefixes"):
            terms[name] = sorted(terms[name])
        return terms

    @cached_property
    def _acronym_re(self) -> re.Pattern[str] | None:
        if not self.federal_acronyms:
            return None
        words = "|".join(re.escape(a) for a in self.federal_acronyms)
        return re.compile(rf"(?<![A-Za-z0-9])(?:{words})(?![A-Za-z0-9])")

    @cached_property
    def _case_number_re(self) -> re.Pattern[str]:
        return re.compile(self.case_number_pattern)

    def case_number_ok(self, case_number: str) -> bool:
        """The pattern, at least one digit that is not a zero, and no placeholder
        ("0000", "TEST", "N-A"): a case number names a case."""
        if self._case_number_re.fullmatch(case_number) is None:
            return False
        if not re.search(r"[1-9]", case_number):
            return False
        letters = re.sub(r"[^A-Z]", "", case_number.upper())
        return letters not in _PLACEHOLDER_CASE_WORDS

    def reason_words(self, reason: str) -> int:
        """How many words of two or more letters the reason holds."""
        return len(re.findall(r"[^\W\d_]{2,}", reason))

    def federal_marker(self, name: str) -> str | None:
        """The marker that makes `name` a federal body, or None."""
        raw = unicodedata.normalize("NFKC", name).replace(".", "")
        if self._acronym_re is not None and (m := self._acronym_re.search(raw)):
            return m.group(0)
        text = normalise_text(name)
        for phrase in self.federal_phrases:
            if _contains_phrase(text, phrase):
                return phrase
        for prefix in self.federal_name_prefixes:
            start = normalise_text(prefix)
            if start and f"{text} ".startswith(f"{start} "):
                return prefix
        return None

    @cached_property
    def _screen_phrases(self) -> list[tuple[str, str, str]]:
        """(purpose id, keyword as written, keyword normalised), in screening order."""
        return [(pid, kw, normalise_text(kw))
                for pid, purpose in self.prohibited_purposes.items()
                for kw in [pid.replace("_", " "), *purpose.keywords]]

    def _first_match(self, text: str) -> tuple[str, str] | None:
        padded = f" {normalise_text(text)} "
        for purpose_id, keyword, needle in self._screen_phrases:
            # A keyword ending in "*" is a stem: "deport*" also matches "deporting".
            hit = (f" {needle}" in padded if keyword.endswith("*")
                   else f" {needle} " in padded)
            if needle and hit:
                return purpose_id, keyword
        return None

    def screen(self, text: str) -> str | None:
        """The prohibited purpose `text` points at (its id), or None."""
        hit = self._first_match(text)
        return hit[0] if hit else None

    def matched_keyword(self, text: str) -> str | None:
        """The keyword that triggered `screen` (for the refusal message)."""
        hit = self._first_match(text)
        return hit[1] if hit else None


def default_policy_path() -> Path:
    return Path(str(resources.files("safeguards") / "default_policy.yaml"))


def load_policy(path: Path | str | None = None, **overrides: object) -> Policy:
    """Read and validate a policy file (the default one when `path` is None).

    `overrides` replace top-level keys after reading (tests, one-off CLI options) and go
    through the same validation. The file is read on every call (access checks call this
    per request, so an edit applies at once); parsing is cached by content.
    """
    file, text = _read(path)
    if not overrides:
        return _parse_cached(file, text)
    return _parse(file, text, overrides)


def read_policy(path: Path | str | None = None) -> tuple[Policy, str]:
    """`load_policy(path)` and the sha256 of the file content it was parsed from (the
    same bytes: one read), as the audit of a policy change names it."""
    file, text = _read(path)
    return _parse_cached(file, text), hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read(path: Path | str | None) -> tuple[Path, str]:
    file = Path(path) if path else default_policy_path()
    try:
        # Bytes, not read_text: no newline translation, so the sha256 is the file's own.
        return file, file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {file}: {exc}") from exc


@lru_cache(maxsize=8)
def _parse_cached(file: Path, _text: str) -> Policy:
    # Keyed by content, not mtime: two edits within one timestamp tick still differ.
    # Policies are frozen, so sharing one is safe.
    return _parse(file, _text, {})


def _parse(file: Path, text: str, overrides: dict[str, object]) -> Policy:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"cannot read policy file {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {file} must hold a mapping")
    data.update(overrides)
    try:
        return Policy.model_validate(data)
    except ValueError as exc:
        raise PolicyError(f"policy file {file} refused: {exc}") from exc
