"""The policy in force, read live, and an audit record of every change to it.

Every request reads the policy file again through `AuditedPolicy` (`AccessRegistry.policy`
is the one place that asks): the access decision, the search terms, the transparency
page all use that one reading. Without more, an agency taken off the MOU list or an
offence taken off the permitted list would show in the audit trail only as later
refusals, and a term relaxed not at all. So a change to any term (`Policy.terms`) is a
record of its own, `policy_changed`, naming the terms that changed and how, the MOU
agencies added and removed, and the sha256 of the file that brought the change. The
first policy a trail sees is recorded the same way (everything "added").

Exactly once per change, with any number of API and CLI processes: the terms last
recorded are kept next to the trail (`audit:policy`) and the record is appended by the
same atomic step that checks and moves them (`AuditLog.append_if`), so a process that
lost the race finds the change already recorded and writes nothing. A process that
cannot record the change refuses to use the policy (fail closed, like an unreadable
file): no request is decided under terms the trail does not show.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import redis

from safeguards.audit import AuditError, AuditLog, AuditRecord, canonical_json
from safeguards.policy import Policy, PolicyError, agency_id_for, read_policy

__all__ = ["ACTION", "AuditedPolicy"]

ACTION = "policy_changed"
_MAX_ATTEMPTS = 20
RETENTION_TERMS = ("retention_days", "allow_retention_above_30_days",
                   "retention_justification")
# Retention is the one term a running process cannot apply in full (see wiring.py).
RETENTION_NOTE = ("searches use the new retention from the next request, never more than "
                  "the running stores keep; reads and alerts already stored keep the expiry "
                  "they were written with, and a running `alpr retention ingest` writes with "
                  "the retention it started with until it is restarted")


def _terms_digest(policy: Policy) -> str:
    return hashlib.sha256(canonical_json(policy.terms).encode()).hexdigest()


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """How each term changed, but the MOU list (named in `added` / `removed`): the ids a
    mapping gained, lost or changed, the items a list gained or lost, else both values."""
    out: dict[str, Any] = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if key == "mou_agency_ids" or old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out[key] = {"added": sorted(new.keys() - old.keys()),
                        "removed": sorted(old.keys() - new.keys()),
                        "changed": sorted(k for k in old.keys() & new.keys()
                                          if old[k] != new[k])}
        elif isinstance(old, list) and isinstance(new, list):
            out[key] = {"added": [x for x in new if x not in old],
                        "removed": [x for x in old if x not in new]}
        else:
            out[key] = {"from": old, "to": new}
    return out


def _mou_names(policy: Policy) -> dict[str, str]:
    """Agency id -> name as the policy writes it (records name agencies, not ids)."""
    return {agency_id_for(name): name for name in policy.mou_agencies}


def _text(raw: bytes | str | None) -> str:
    return "" if raw is None else raw.decode() if isinstance(raw, bytes) else raw


class AuditedPolicy:
    """A policy source for `AccessRegistry`: each call reads the file (`read_policy`)
    and, when its terms differ from the ones last recorded, audits the change."""

    def __init__(self, path: Path | str | None, audit: AuditLog) -> None:
        self.path = path
        self.audit = audit
        self.key = f"{audit.stream_key}:policy"
        # (stored state, its digest): one JSON parse per change, not per request.
        self._seen: tuple[str, str] = ("", "")
        self._lock = threading.Lock()

    def __call__(self) -> Policy:
        policy, file_sha256 = read_policy(self.path)
        try:
            self.record(policy, file_sha256)
        except AuditError as exc:
            raise PolicyError(f"the policy in force could not be audited: {exc}") from exc
        return policy

    def record(self, policy: Policy, file_sha256: str) -> AuditRecord | None:
        """Audit `policy` as the one in force if its terms are not the ones last
        recorded; the record, or None when there was nothing to record."""
        digest = _terms_digest(policy)
        for _ in range(_MAX_ATTEMPTS):
            try:
                stored = _text(self.audit.client.get(self.key))
            except redis.RedisError as exc:
                raise AuditError(f"audit trail unavailable: {exc}") from exc
            if stored and self._digest_of(stored) == digest:
                return None  # the common case: one GET per request
            previous: dict[str, Any] | None = json.loads(stored) if stored else None
            state = canonical_json({"digest": digest, "file_sha256": file_sha256,
                                    "terms": policy.terms,
                                    "mou_names": _mou_names(policy)})
            record = self.audit.append_if(
                self.key, stored, state, actor="system", agency="-", action=ACTION,
                decision="in_force", details=self._details(policy, file_sha256, previous))
            if record is not None:
                return record
            # Another process recorded a change meanwhile: compare with that one.
        raise AuditError("policy change: lost the race too many times")

    def _digest_of(self, stored: str) -> str:
        with self._lock:
            if self._seen[0] == stored:
                return self._seen[1]
        digest = str(json.loads(stored)["digest"])
        with self._lock:
            self._seen = (stored, digest)
        return digest

    def _details(self, policy: Policy, file_sha256: str,
                 previous: dict[str, Any] | None) -> dict[str, Any]:
        terms = policy.terms
        # A trail recorded before every term was audited holds the access terms only:
        # the others then show as changed once, from None.
        before: dict[str, Any] = previous["terms"] if previous else {}
        before_names: dict[str, str] = previous["mou_names"] if previous else {}
        names = _mou_names(policy)
        changed = sorted(k for k, v in terms.items() if before.get(k) != v)
        details = {
            "file": str(self.path) if self.path else "(default policy)",
            "file_sha256": file_sha256,
            "previous_file_sha256": previous["file_sha256"] if previous else None,
            "added": sorted(names[aid] for aid in names.keys() - before_names.keys()),
            "removed": sorted(before_names[aid] for aid in before_names.keys() - names.keys()),
            "terms_changed": changed,
            "changes": _changes(before, terms),
            "mou_agencies": len(names),
        }
        if set(changed) & set(RETENTION_TERMS) & before.keys():  # an edit, not a first sight
            details["retention_note"] = RETENTION_NOTE
        return details
