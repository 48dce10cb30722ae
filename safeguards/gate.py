"""Admission of one request: authenticate, authorise, and audit every refusal.

Search, verification and the API's refusals of malformed requests all go through a
Gate, so "every attempt, allowed or refused, is audited" holds by construction. If the
audit trail cannot take the record, the request is refused (503): nothing runs
unaudited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

import redis

from safeguards.access import AccessDeniedError, AccessRegistry, Principal, Role
from safeguards.audit import AuditError, AuditLog, AuditRecord
from safeguards.throttle import FailedLogins

__all__ = ["Gate", "Refusal"]


class Refusal(Exception):
    """A refused request: HTTP status, machine code, message, and its audit record."""

    def __init__(self, status: int, code: str, message: str, audit_seq: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.audit_seq = audit_seq

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message, "audit_seq": self.audit_seq}


@dataclass
class Gate:
    access: AccessRegistry
    audit: AuditLog
    # Re-check the audit Redis's durability at most this often while serving (0: never):
    # one that stops fsyncing while the API runs refuses requests from then on.
    durability_check_s: float = 0.0
    _durable_checked_at: float = field(default=-1e9, repr=False)
    logins: FailedLogins = field(default_factory=FailedLogins)

    def _check_durable(self) -> None:
        now = time.monotonic()
        if self.durability_check_s and now - self._durable_checked_at >= self.durability_check_s:
            try:
                self.audit.ensure_durable()  # AuditNotDurableError: an AuditError
            except redis.RedisError as exc:  # the audit Redis down or hung
                raise AuditError(f"audit Redis unavailable: {exc}") from exc
            self._durable_checked_at = now

    def record(self, *, actor: str, agency: str, action: str, decision: str,
               details: dict[str, Any], metrics: tuple[str, ...] = ()) -> AuditRecord:
        """Audit an allowed action; a failure to audit refuses it (503), and so does an
        audit Redis that no longer fsyncs every write."""
        try:
            self._check_durable()
            return self.audit.append(actor=actor, agency=agency, action=action,
                                     decision=decision, details=details, metrics=metrics)
        except AuditError as exc:
            raise Refusal(503, "audit_unavailable", "the audit trail cannot record this "
                          "request, so it is refused", None) from exc

    def refuse(
        self, *, action: str, code: str, status: int, message: str, details: dict[str, Any],
        actor: str = "", agency: str = "", metrics: tuple[str, ...] = (),
    ) -> NoReturn:
        # Refusals of nobody in particular (no valid credentials) are audited but not
        # counted: anyone could inflate the public "searches refused" figure with them.
        record = self.record(
            actor=actor or "anonymous", agency=agency or "-", action=action,
            decision=f"refused:{code}", details={**details, "refusal": message},
            metrics=metrics if actor else ())
        raise Refusal(status, code, message, record.seq)

    def _who_failed(self, exc: AccessDeniedError, token: str | None, details: dict[str, Any]
                    ) -> tuple[str, str, dict[str, Any]]:
        """(actor, agency, details) of a failed authentication. Only valid credentials
        (refused with 403) name the actor; otherwise the user the token claimed is noted
        as a claim, never as the actor."""
        if exc.status == 403:
            return exc.user_id, exc.agency_id, details
        claimed = self.access.claimed_user(token)
        return "", "", {**details, "claimed_user": claimed} if claimed else details

    def refuse_unparsed(
        self, token: str | None, *, action: str, code: str, status: int, message: str,
        details: dict[str, Any], metrics: tuple[str, ...] = (), credentials_first: bool = True,
    ) -> Refusal:
        """Audit a request refused before its content could be checked (too large,
        malformed) and return the Refusal. With `credentials_first`, bad credentials win
        over a bad body (401/403), so a malformed request tells a stranger nothing about
        the API; without, the refusal stands and the failed login is noted in details.

        A Redis error while checking the credentials propagates with `credentials_first`
        (the answer depends on them: the caller says 503 `redis_unavailable`)."""
        try:
            principal = self.access.authenticate(token)
        except AccessDeniedError as exc:
            if credentials_first:
                code, status, message = exc.code, exc.status, exc.message
            actor, agency, details = self._who_failed(exc, token, details)
            details = {**details, "authentication": exc.code}
        except redis.RedisError:
            if credentials_first:
                raise
            # The login only annotates this refusal: refuse (audited) without it.
            actor, agency = "", ""
            claimed = self.access.claimed_user(token)
            details = {**details, "authentication": "redis_unavailable",
                       **({"claimed_user": claimed} if claimed else {})}
        else:
            actor, agency = principal.user_id, principal.agency_id
        try:
            self.refuse(action=action, code=code, status=status, message=message,
                        details=details, actor=actor, agency=agency, metrics=metrics)
        except Refusal as refusal:
            return refusal

    def admit(
        self,
        token: str | None,
        *,
        action: str,
        role: Role,
        details: dict[str, Any],
        claimed_agency: str | None = None,
        refused_metrics: tuple[str, ...] = (),
    ) -> Principal:
        """The principal allowed to do `action`, or a Refusal (already audited)."""
        claimed = self.access.claimed_user(token)
        login = FailedLogins.keys(str(details.get("client", "")), claimed)
        if locked := self.logins.blocked(login):
            # Checked before the token: a locked-out guesser costs no scrypt.
            self.refuse(action=action, code="login_throttled", status=429,
                        message="too many failed logins: try again later",
                        details={**details, "locked_out": locked,
                                 **({"claimed_user": claimed} if claimed else {})})
        try:
            principal = self.access.authenticate(token)
        except AccessDeniedError as exc:
            if exc.status == 401 and token:  # a credential that failed, not none at all
                self.logins.failed(login)
            actor, agency, details = self._who_failed(exc, token, details)
            self.refuse(action=action, code=exc.code, status=exc.status, message=exc.message,
                        details=details, actor=actor, agency=agency, metrics=refused_metrics)
        self.logins.succeeded(principal.user_id)
        if claimed_agency is not None and claimed_agency != principal.agency_id:
            self.refuse(action=action, code="agency_mismatch", status=403,
                        message="this token belongs to another agency",
                        details={**details, "claimed_agency": claimed_agency},
                        actor=principal.user_id, agency=principal.agency_id,
                        metrics=refused_metrics)
        if role.value not in principal.roles:
            self.refuse(action=action, code="missing_role", status=403,
                        message=f"this user lacks the {role.value!r} role",
                        details=details, actor=principal.user_id, agency=principal.agency_id,
                        metrics=refused_metrics)
        return principal
