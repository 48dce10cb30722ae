"""Recording the human verification every hotlist hit needs before anyone acts on it.

Denver policy: "all scanned license plates are required to be verified by law
enforcement personnel and checked in the CCIC/NCIC information system(s) prior to
action". So an alert can only be marked verified when the image matches and NCIC/CCIC
confirmed the entry active; anything else is a dismissal. Each alert is verified once;
each attempt is audited and counted for the transparency page. The audit record of an
attempt (`requested`) is written before the verification is stored (write-ahead), its
outcome after. A verification whose outcome record cannot be written is undone (the
answer is 503), then an `undone` record names the request (best effort): so the trail
does not end at `verified`, nor do the statistics count it, for a verification undone.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, model_validator

from safeguards.access import Role
from safeguards.alerts import AlertStore, CheckResult, Outcome, Verification
from safeguards.audit import REQUESTED, Metric
from safeguards.gate import Gate, Refusal
from safeguards.redact import scrub_note
from safeguards.retention import now_ms

__all__ = ["HitOutcome", "VerificationRequest", "VerificationService"]

ACTION = "alert_verification"
_ALERT_ID = re.compile(r"[0-9a-f]{32}")


class HitOutcome(StrEnum):
    """How the hit ended, counted per list on the transparency portal. A confirmed hit
    and a vehicle not located were right (verified); the others were not (dismissed)."""

    CONFIRMED = "confirmed"
    VEHICLE_NOT_LOCATED = "vehicle_not_located"
    MISREAD = "misread"
    WRONG_STATE = "wrong_state"
    NO_LONGER_WANTED = "no_longer_wanted"


VERIFIED_HIT_OUTCOMES = frozenset({HitOutcome.CONFIRMED, HitOutcome.VEHICLE_NOT_LOCATED})


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: Outcome
    check_system: Literal["NCIC", "CCIC", "NCMEC"] = Field(
        description="Where the entry was confirmed.")
    check_result: CheckResult
    image_matches: bool = Field(description="The plate image matches the read.")
    note: str = Field("", max_length=500)
    hit_outcome: HitOutcome | None = Field(None, description=(
        "how the hit ended (dispatch console): confirmed and vehicle_not_located go with "
        "outcome verified, the others with dismissed"))

    @model_validator(mode="after")
    def _hit_outcome_agrees(self) -> VerificationRequest:
        if self.hit_outcome is not None and (
                (self.hit_outcome in VERIFIED_HIT_OUTCOMES)
                != (self.outcome is Outcome.VERIFIED)):
            raise ValueError(f"hit outcome {self.hit_outcome.value} does not go with "
                             f"outcome {self.outcome.value}")
        return self


class VerificationService:
    def __init__(self, alerts: AlertStore, gate: Gate) -> None:
        self.alerts = alerts
        self.gate = gate

    def verify(
        self,
        token: str | None,
        alert_id: str,
        request: VerificationRequest,
        *,
        channel: str = "http",
        client: str = "",
        claimed_agency: str | None = None,
    ) -> Verification:
        # The audit outlives the note's 30 days with the verification: no plates or
        # dates of birth in it.
        details = {"alert_id": alert_id[:64], **request.model_dump(mode="json"),
                   "note": scrub_note(request.note), "channel": channel, "client": client}
        principal = self.gate.admit(token, action=ACTION, role=Role.VERIFY, details=details,
                                    claimed_agency=claimed_agency)

        def refuse(code: str, status: int, message: str) -> NoReturn:
            self.gate.refuse(action=ACTION, code=code, status=status, message=message,
                             details=details, actor=principal.user_id,
                             agency=principal.agency_id)

        if not _ALERT_ID.fullmatch(alert_id):
            refuse("invalid_alert_id", 422, "alert ids are 32 lower-case hex digits")
        if request.outcome is Outcome.VERIFIED and not (
            request.image_matches and request.check_result is CheckResult.CONFIRMED_ACTIVE
        ):
            refuse("verification_incomplete", 422, "an alert is verified only when the image "
                   "matches and NCIC/CCIC confirmed the entry active; otherwise dismiss it")
        alert = self.alerts.get(alert_id)
        if alert is None:
            refuse("alert_not_found", 404, "no such alert (or it is past retention)")
        details |= {"source": alert.entry.source.value, "entry_id": alert.entry.entry_id,
                    "historical": alert.historical}
        if self.alerts.verification(alert_id) is not None:
            refuse("already_verified", 409, "this alert was already verified or dismissed")
        verification = Verification(
            alert_id=alert_id, outcome=request.outcome, check_system=request.check_system,
            check_result=request.check_result, image_matches=request.image_matches,
            note=request.note, user_id=principal.user_id, agency=principal.agency_id,
            at=now_ms(), hit_outcome=request.hit_outcome and request.hit_outcome.value)
        # Write-ahead: the attempt is on the trail before the data Redis sees it, so a
        # write that times out here and lands when a hung Redis resumes is covered.
        requested = self.gate.record(actor=principal.user_id, agency=principal.agency_id,
                                     action=ACTION, decision=REQUESTED, details=details)
        details |= {"request_seq": requested.seq}
        try:
            stored = self.alerts.record_verification(alert, verification)
        except Exception as exc:
            self.gate.audit.append_failed(requested, exc)
            raise
        if not stored:
            refuse("already_verified", 409, "this alert was already verified or dismissed")
        metric = (Metric.ALERT_VERIFIED if request.outcome is Outcome.VERIFIED
                  else Metric.ALERT_DISMISSED)
        try:
            record = self.gate.record(actor=principal.user_id, agency=principal.agency_id,
                                      action=ACTION, decision=request.outcome.value,
                                      details=details, metrics=(metric,))
        except Refusal as refusal:
            # Undone so the answer (503) holds. The outcome record may have landed all
            # the same (its reply lost; one that timed out cannot land later): the
            # `undone` record follows it and takes its count back. If the undo itself
            # fails, whether the verification stands is unknown: say that instead.
            try:
                self.alerts.forget_verification(alert_id)
            except Exception as exc:
                self.gate.audit.append_failed(requested, exc)
                raise
            self.gate.audit.append_undone(requested, refusal.__cause__ or refusal,
                                          undid=request.outcome.value, metrics=(metric,))
            raise
        return verification.model_copy(update={"audit_seq": record.seq})
