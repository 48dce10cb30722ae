"""Audited administration of agencies and users (the `alpr agency` / `alpr user` jobs).

Every change, and every refused change (a federal body, an agency without an MOU), is
audited naming the operator: a `requested` record before the change is made (write-ahead:
no record, no change), then its outcome. Tokens never reach the audit trail.

A change made whose outcome record cannot be written is not undone (re-enabling a
disabled user, or bringing back a rotated-out token, is no safe undo; the `requested`
record, write-ahead, covers the change): `OutcomeNotRecorded` says so and carries what
the change returned (a new user's token), which is in effect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from safeguards.access import AccessRegistry, Agency, AgencyKind, RegistryError, Role, User
from safeguards.audit import REQUESTED, AuditError, AuditLog, AuditRecord

__all__ = ["Admin", "OutcomeNotRecorded"]

_T = TypeVar("_T")


class OutcomeNotRecorded(AuditError):
    """The change was made and stands, but its outcome record could not be written: the
    trail ends at its `requested` record (`request`), which covers it. `result` is what
    the change returned. An AuditError, so a caller that does not know this case still
    stops; the CLI tells it apart (exit 3)."""

    def __init__(self, result: Any, request: AuditRecord, cause: AuditError) -> None:
        super().__init__(f"done, but its outcome could not be audited ({cause}); the "
                         f"audit trail holds its request (record {request.seq})")
        self.result = result
        self.request = request
        self.cause = cause


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
        a hung Redis may still apply it when it resumes, and the request covers that.
        A change made whose outcome record fails stands: OutcomeNotRecorded."""
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
        try:
            self.audit.append(actor=self.operator, agency=agency, action=action,
                              decision="allowed", details=done)
        except AuditError as exc:
            raise OutcomeNotRecorded(result, request, exc) from exc
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
