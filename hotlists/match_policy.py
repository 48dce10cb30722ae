"""Per-source matching policy: the one place that says how loosely each list matches.

A non-exact match on a big, low-priority list is noisy (with a million entries almost
every read is one character away from some plate), so by default only urgent entries
tolerate an extra differing character, and OCR equivalence tolerates one look-alike
position (Genetec's default):

    source  OCR equivalence  max_equivalent  max_extra  urgent_max_extra (priority 1)
    NCMEC   on               1               1          1
    NCIC    on               1               0          1   (NCIC's Amber file, code A)
    CCIC    on               1               0          1
    LOCAL   on               1               0          1

Override with ALPR_HOTLIST_MATCH_POLICY, a JSON object per source, e.g.
    ALPR_HOTLIST_MATCH_POLICY='{"LOCAL": {"max_extra": 1}, "NCIC": {"ocr_equivalence": false}}'

The store builds the misread index of each entry from the policy in force at import
time: after raising a max_extra, re-import the source (`alpr hotlist status` shows the
index depth each source was built with).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel.contracts import HotlistSource

__all__ = [
    "DEFAULT_POLICIES",
    "MAX_EXTRA_LIMIT",
    "POLICY_ENV",
    "URGENT_PRIORITY",
    "PolicyConfigError",
    "SourcePolicy",
    "load_policies",
]

POLICY_ENV = "ALPR_HOTLIST_MATCH_POLICY"
# Practice (Genetec): never more than 2 extra differing characters.
MAX_EXTRA_LIMIT = 2
# Entries at this priority or more urgent (1 = Amber alert) get urgent_max_extra.
URGENT_PRIORITY = 1


class PolicyConfigError(ValueError):
    """ALPR_HOTLIST_MATCH_POLICY is not valid."""


class SourcePolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ocr_equivalence: bool = Field(
        True, description="look-alike characters (0/O, 8/B, ...) count as equal"
    )
    max_equivalent: int = Field(
        1, ge=0, le=10, description="look-alike positions tolerated (Genetec: 1, up to 2)"
    )
    max_extra: int = Field(
        0, ge=0, le=MAX_EXTRA_LIMIT, description="other differing characters, every entry"
    )
    urgent_max_extra: int = Field(
        1, ge=0, le=MAX_EXTRA_LIMIT, description="other differing characters, priority 1"
    )
    min_fuzzy_length: int = Field(
        5, ge=2, description="plates or reads shorter than this never match with extras"
    )

    def extra_for(self, priority: int, length: int) -> int:
        """Extra differing characters an entry of this priority and plate length allows."""
        if length < self.min_fuzzy_length:
            return 0
        urgent = self.urgent_max_extra if priority <= URGENT_PRIORITY else 0
        return max(self.max_extra, urgent)


DEFAULT_POLICIES: Mapping[HotlistSource, SourcePolicy] = {
    HotlistSource.NCMEC: SourcePolicy(max_extra=1),
    HotlistSource.NCIC: SourcePolicy(),
    HotlistSource.CCIC: SourcePolicy(),
    HotlistSource.LOCAL: SourcePolicy(),
}


def load_policies(
    overrides: str | None = None, env: Mapping[str, str] | None = None
) -> dict[HotlistSource, SourcePolicy]:
    """Default policies with the JSON `overrides` (default: $ALPR_HOTLIST_MATCH_POLICY)
    applied field by field."""
    text = overrides if overrides is not None else (env or os.environ).get(POLICY_ENV, "")
    policies = dict(DEFAULT_POLICIES)
    if not text.strip():
        return policies
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise PolicyConfigError(f"{POLICY_ENV} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PolicyConfigError(f"{POLICY_ENV} must be an object keyed by source")
    for name, fields in raw.items():
        try:
            source = HotlistSource(str(name).upper())
        except ValueError:
            known = ", ".join(s.value for s in HotlistSource)
            raise PolicyConfigError(f"{POLICY_ENV}: unknown source {name!r} ({known})") from None
        if not isinstance(fields, dict):
            raise PolicyConfigError(f"{POLICY_ENV}: {name} must map to an object")
        try:
            policies[source] = SourcePolicy.model_validate(
                {**policies[source].model_dump(), **fields}
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PolicyConfigError(f"{POLICY_ENV}: {name}.{where}: {first['msg']}") from None
    return policies
