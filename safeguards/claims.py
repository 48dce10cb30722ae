"""Who is working an alert: a dispatcher claims it before recording its outcome.

A claim is one key per alert (prefix `alpr:sg:`), kept as long as the alert:

    claim:{alert_id}       STRING  Claim JSON, SET NX, PXAT the alert's expiry

The first claim wins; another dispatcher's claim is refused (409 `claimed`, audited) and
names who has it, so two people never work one hit unknowingly. Every claim is audited
(`alert_claim`, decision `claimed`); a claim whose record cannot be written is taken
back (503 `audit_unavailable`), so the trail never lacks a claim the console shows.
"""

from __future__ import annotations

import re
from typing import NoReturn

from pydantic import BaseModel, ConfigDict

from safeguards.access import Role
from safeguards.alerts import AlertStore
from safeguards.gate import Gate, Refusal
from safeguards.retention import now_ms

__all__ = ["CLAIM_ACTION", "Claim", "ClaimService"]

CLAIM_ACTION = "alert_claim"
_ALERT_ID = re.compile(r"[0-9a-f]{32}")


class Claim(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    user_id: str
    name: str
    agency: str
    at: int  # epoch ms
    audit_seq: int | None = None


class ClaimService:
    def __init__(self, alerts: AlertStore, gate: Gate) -> None:
        self.alerts = alerts
        self.gate = gate

    def key(self, alert_id: str) -> str:
        return f"{self.alerts.prefix}claim:{alert_id}"

    def claim_of(self, alert_id: str) -> Claim | None:
        raw = self.alerts.client.get(self.key(alert_id))
        return None if raw is None else Claim.model_validate_json(raw)

    def claims_of(self, alert_ids: list[str]) -> dict[str, Claim]:
        if not alert_ids:
            return {}
        raws = self.alerts.client.mget([self.key(a) for a in alert_ids])
        return {a: Claim.model_validate_json(r) for a, r in zip(alert_ids, raws, strict=True)
                if r is not None}

    def claim(self, token: str | None, alert_id: str, *, channel: str = "console",
              client: str = "") -> Claim:
        """Claim `alert_id` for the token's user (theirs already: returned as it is)."""
        details = {"alert_id": alert_id[:64], "channel": channel, "client": client}
        principal = self.gate.admit(token, action=CLAIM_ACTION, role=Role.VERIFY,
                                    details=details)

        def refuse(code: str, status: int, message: str) -> NoReturn:
            self.gate.refuse(action=CLAIM_ACTION, code=code, status=status, message=message,
                             details=details, actor=principal.user_id,
                             agency=principal.agency_id)

        if not _ALERT_ID.fullmatch(alert_id):
            refuse("invalid_alert_id", 422, "alert ids are 32 lower-case hex digits")
        alert = self.alerts.get(alert_id)
        if alert is None:
            refuse("alert_not_found", 404, "no such alert (or it is past retention)")
        if self.alerts.verification(alert_id) is not None:
            refuse("already_verified", 409, "this alert was already verified or dismissed")
        user = self.gate.access.user(principal.user_id)
        claim = Claim(alert_id=alert_id, user_id=principal.user_id,
                      name=user.name if user else principal.user_id,
                      agency=principal.agency_id, at=now_ms())
        expire_at = min(alert.read.first_seen, claim.at) + self.alerts.retention_ms
        if not self.alerts.client.set(self.key(alert_id), claim.model_dump_json(), nx=True,
                                      pxat=expire_at):
            held = self.claim_of(alert_id)
            if held is not None and held.user_id == principal.user_id:
                return held
            who = held.name if held else "another dispatcher"
            refuse("claimed", 409, f"{who} has claimed this alert")
        try:
            record = self.gate.record(
                actor=principal.user_id, agency=principal.agency_id, action=CLAIM_ACTION,
                decision="claimed", details={**details, "source": alert.entry.source.value,
                                             "entry_id": alert.entry.entry_id})
        except Refusal:
            self.alerts.client.delete(self.key(alert_id))
            raise
        return claim.model_copy(update={"audit_seq": record.seq})
