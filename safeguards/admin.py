"""Audited administration of agencies and users (the `alpr agency` / `alpr user` jobs).

Every change, and every refused change (a federal body, an agency without an MOU), is
audited naming the operator: a `requested` record before the change is made (write-ahead:
no record, no change), then its outcome. Tokens never reach the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from safeguards.access import AccessRegistry, Agency, AgencyKind, RegistryError, Role, User
from safeguards.audit import REQUESTED, AuditLog

__all__ = ["Admin"]

_T = TypeVar("_T")


class Admin:
    def __init__(self, access: AccessRegistry, audit: AuditLog, operator: str) -> None:
        self.access = access
        self.audit = audit
        self.operator = operator

    def _audited(self, action: str, details: dict[str, Any], agency: str,
                 change: Callable[[], _T]) -> _T:
        """Write-ahead: the change is recorded (`requested`) before it is made, then by
        its outcome. No record, no change (AuditError). A change that fails on Redis or
        times out gets a best-effort `failed:outcome_unknown` and the error propagates:
        a hung Redis may still apply it when it resumes, and the request covers that."""
        request = self.audit.append(actor=self.operator, agency=agency, action=action,
                                    decision=REQUESTED, details=details)
        done = {**details, "request_seq": request.seq}
        try:
            result = change()
        except RegistryError as exc:
            self.audit.append(actor=self.operator, agency=agency, action=action,
                              decision="refused:registry", details={**done,
                                                                    "refusal": str(exc)})
            raise
        except Exception as exc:
            self.audit.append_failed(request, exc)
            raise
        self.audit.append(actor=self.operator, agency=agency, action=action,
                          decision="allowed", details=done)
        return result

    def ensure_defaults(self) -> int:
        missing = self.access.missing_defaults()
        if not missing:
            return 0
        return self._audited("agency_defaults", {"added": len(missing), "agency_ids": [
            agency_id for agency_id, _ in missing]}, "-",
            lambda: self.access.add_defaults(missing))

    def add_agency(self, name: str, kind: AgencyKind | str = AgencyKind.MOU,
                   mou_reference: str = "") -> Agency:
        details = {"name": name, "kind": str(kind), "mou_reference": mou_reference}
        return self._audited("agency_add", details, "-",
                             lambda: self.access.add_agency(name, kind, mou_reference))

    def set_agency_enabled(self, agency_id: str, enabled: bool) -> Agency:
        action = "agency_enable" if enabled else "agency_disable"
        return self._audited(action, {"agency_id": agency_id}, agency_id,
                             lambda: self.access.set_agency_enabled(agency_id, enabled))

    def add_user(self, user_id: str, agency_id: str, *, name: str = "",
                 roles: Iterable[Role | str] = (Role.SEARCH,), employer: str = ""
                 ) -> tuple[User, str]:
        roles = list(roles)
        details = {"user_id": user_id, "agency_id": agency_id, "name": name,
                   "roles": [str(r) for r in roles], "employer": employer}
        return self._audited("user_add", details, agency_id, lambda: self.access.add_user(
            user_id, agency_id, name=name, roles=roles, employer=employer))

    def set_user_enabled(self, user_id: str, enabled: bool) -> User:
        action = "user_enable" if enabled else "user_disable"
        user = self.access.user(user_id)
        return self._audited(action, {"user_id": user_id}, user.agency_id if user else "-",
                             lambda: self.access.set_user_enabled(user_id, enabled))

    def rotate_token(self, user_id: str) -> str:
        user = self.access.user(user_id)
        return self._audited("user_rotate_token", {"user_id": user_id},
                             user.agency_id if user else "-",
                             lambda: self.access.rotate_token(user_id))
