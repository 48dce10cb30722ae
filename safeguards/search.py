"""The guarded search: one service behind both `POST /search` and `alpr search`.

A search needs a case number, a reason and a permitted offence category; it is refused
for a prohibited purpose (by category, and by screening the reason text), for a plate
pattern that could sweep up all reads, for a window outside retention, and beyond a
per-user hourly budget. Results are capped, per search and per day across searches
(per case, user and agency: `quotas.py`), and there is no paging: no bulk export.
Every attempt is audited with who, agency, when, the query, case number, reason,
result count and decision; a search whose audit record cannot be written returns
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import redis
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from kernel.contracts import PlateRead
from safeguards import KEY_PREFIX
from safeguards.access import Principal, Role
from safeguards.audit import Metric
from safeguards.gate import Gate
from safeguards.patterns import PlatePattern, PlatePatternError
from safeguards.policy import DAY_MS, Policy, mixed_script_word
from safeguards.quotas import DailyReadQuota
from safeguards.retention import ReadStore, now_ms

__all__ = ["SearchHit", "SearchRequest", "SearchResponse", "SearchService"]

ACTION = "search"
# A window may end a little in the future (clock skew between the client and us).
_FUTURE_SLACK_MS = 5 * 60_000

_Refuse = Callable[[str, int, str], NoReturn]

CameraId = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                            pattern=r"^[A-Za-z0-9_.:-]+$")]


class SearchRequest(BaseModel):
    """What a searcher sends. Shapes and sizes are checked here; the policy (offence,
    purpose, pattern, window) by the service, so its refusals carry precise codes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    plate: str = Field(max_length=20, description="Exact plate or pattern: A-Z 0-9, '*' any "
                       "characters, '?' one character; at least 3 letters or digits.",
                       examples=["ABC123", "AB*12", "?BC12?"])
    start: AwareDatetime | None = Field(None, description="Window start (default: the "
                                        "start of retention). ISO 8601 with time zone.")
    end: AwareDatetime | None = Field(None, description="Window end (default: now).")
    cameras: list[CameraId] = Field(default_factory=list, max_length=50,
                                    description="Only reads from these cameras.")
    case_number: str = Field(max_length=40, description="The criminal case this search "
                             "serves.")
    reason: str = Field(max_length=1000, description="Why this search is needed.")
    offence: str = Field(max_length=64, description="Permitted offence category id.")
    limit: int | None = Field(None, ge=1, le=10_000, description="At most the policy cap.")

    def audit_view(self) -> dict[str, Any]:
        return {
            "query": {
                "plate": self.plate,
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "cameras": self.cameras,
                "limit": self.limit,
            },
            "case_number": self.case_number,
            "reason": self.reason,
            "offence": self.offence,
        }


class SearchHit(BaseModel):
    read_id: str
    plate: str
    state: str | None
    camera_id: str
    first_seen: datetime
    last_seen: datetime
    confidence: float
    lat: float | None
    lon: float | None
    heading: float | None
    lane: str | None
    crop_jpeg_b64: str

    @classmethod
    def of(cls, read: PlateRead) -> SearchHit:
        return cls(
            read_id=read.read_id, plate=read.plate, state=read.state, camera_id=read.camera_id,
            first_seen=datetime.fromtimestamp(read.first_seen / 1000, UTC),
            last_seen=datetime.fromtimestamp(read.last_seen / 1000, UTC),
            confidence=read.confidence, lat=read.lat, lon=read.lon, heading=read.heading,
            lane=read.lane, crop_jpeg_b64=read.crop_jpeg_b64,
        )


class SearchResponse(BaseModel):
    results: list[SearchHit]
    count: int
    truncated: bool = Field(description="More reads matched than the cap allows: narrow "
                            "the search (there is no paging).")
    cap: int
    audit_seq: int
    retention_days: float
    withheld_by_daily_cap: int = Field(0, description="Reads this search found but not "
                                       "released: a daily cap across searches (per case, "
                                       "user or agency) is reached.")


def _ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


class SearchService:
    """Searches under the policy in force for each request: the one the gate admitted
    the searcher under (`Principal.policy`), read from the file for that request."""

    def __init__(self, reads: ReadStore, gate: Gate, rate_client: redis.Redis | None = None,
                 *, prefix: str = KEY_PREFIX) -> None:
        self.reads = reads
        self.gate = gate
        self._rate = rate_client or reads.client
        self._prefix = prefix
        self._quota = DailyReadQuota(self._rate, prefix=prefix)

    def search(
        self,
        token: str | None,
        request: SearchRequest,
        *,
        channel: str = "http",
        client: str = "",
        claimed_agency: str | None = None,
    ) -> SearchResponse:
        details = {**request.audit_view(), "channel": channel, "client": client}
        principal = self.gate.admit(
            token, action=ACTION, role=Role.SEARCH, details=details,
            claimed_agency=claimed_agency, refused_metrics=(Metric.SEARCH_REFUSED,))

        def refuse(code: str, status: int, message: str) -> NoReturn:
            self.gate.refuse(action=ACTION, code=code, status=status, message=message,
                             details=details, actor=principal.user_id,
                             agency=principal.agency_id, metrics=(Metric.SEARCH_REFUSED,))

        policy = principal.policy
        pattern, window, limit = self._check(request, policy, refuse)
        self._check_budget(principal, policy, refuse)
        found = self.reads.find(pattern, start_ms=window[0], end_ms=window[1],
                                cameras=request.cameras, limit=limit)
        released = self._quota.release(principal, request.case_number,
                                       [r.read_id for r in found.reads], policy)
        reads = [r for r in found.reads if r.read_id in released.read_ids]
        withheld = len(found.reads) - len(reads)
        if released.withheld_by:
            self._alert_slicing(principal, details, released.withheld_by, withheld)
            if not reads:
                caps = " and ".join(released.withheld_by)
                refuse("daily_cap_reached", 429, f"the daily {caps} cap on reads released "
                       "is reached (no bulk export by slicing the window)")
        record = self.gate.record(
            actor=principal.user_id, agency=principal.agency_id, action=ACTION,
            decision="allowed",
            details={**details, "result_count": len(reads),
                     "truncated": found.truncated or bool(withheld),
                     **({"withheld_by_daily_cap": withheld} if withheld else {})},
            metrics=(Metric.SEARCH_ALLOWED,))
        return SearchResponse(
            results=[SearchHit.of(r) for r in reads], count=len(reads),
            truncated=found.truncated or bool(withheld), cap=limit, audit_seq=record.seq,
            retention_days=self.reads.retention_in_force_ms(policy) / DAY_MS,
            withheld_by_daily_cap=withheld)

    def _alert_slicing(self, principal: Principal, details: dict[str, Any],
                       caps: tuple[str, ...], withheld: int) -> None:
        """An audit record for oversight: this searcher reached a daily cap across
        searches, the mark of a bulk export by time slices."""
        self.gate.record(actor=principal.user_id, agency=principal.agency_id,
                         action="bulk_export_alert", decision="alert",
                         details={**details, "daily_caps_reached": list(caps),
                                  "withheld": withheld})

    def _check(
        self, request: SearchRequest, policy: Policy, refuse: _Refuse
    ) -> tuple[PlatePattern, tuple[int, int], int]:
        offence = request.offence.strip().lower()
        # Prohibited purposes first: the most important refusal wins the audit record.
        purpose = offence if offence in policy.prohibited_purposes else policy.screen(offence)
        if purpose:
            refuse("prohibited_purpose", 403, f"searches for {_label(policy, purpose)} are "
                   "prohibited")
        if offence not in policy.permitted_offences:
            refuse("offence_not_permitted", 422, f"offence {request.offence!r} is not a "
                   f"permitted category; permitted: {', '.join(policy.permitted_offences)}")
        for name, text in (("reason", request.reason), ("case number", request.case_number),
                           ("offence", request.offence)):
            # Look-alike letters from another script inside a word are spelt to slip
            # past the screen: refused, whatever they spell.
            if word := mixed_script_word(text):
                refuse("mixed_script", 422, f"the {name} mixes scripts in {word!r}: "
                       "write it in one script")
            if purpose := policy.screen(text):
                keyword = policy.matched_keyword(text)
                refuse("prohibited_purpose", 403, f"the {name} points at a prohibited "
                       f"purpose: {_label(policy, purpose)} (matched {keyword!r})")
        if not policy.case_number_ok(request.case_number.upper()):
            refuse("invalid_case_number", 422, "a case number is required (letters, digits "
                   "and dashes, 4-32 characters, at least one digit other than 0; no "
                   "placeholder such as TEST)")
        if (len(request.reason) < policy.min_reason_chars
                or policy.reason_words(request.reason) < policy.min_reason_words):
            refuse("reason_too_short", 422, f"the reason must say why in words (at least "
                   f"{policy.min_reason_chars} characters and {policy.min_reason_words} "
                   "words)")
        try:
            pattern = PlatePattern.parse(request.plate, min_literal=policy.min_literal_plate_chars)
        except PlatePatternError as exc:
            refuse("invalid_plate_pattern", 422, str(exc))
        now = now_ms()
        retention_ms = self.reads.retention_in_force_ms(policy)
        retained_from = now - retention_ms
        start, end = _ms(request.start), _ms(request.end)
        start = retained_from if start is None else start
        end = now if end is None else end
        if start > end:
            refuse("invalid_window", 422, "the window starts after it ends")
        if start < retained_from - 60_000:
            refuse("window_outside_retention", 422, f"reads are kept "
                   f"{retention_ms / DAY_MS:g} days: the window must start within "
                   "retention")
        if end > now + _FUTURE_SLACK_MS:
            refuse("invalid_window", 422, "the window ends in the future")
        # The store cuts at its own retention only: a policy that keeps less cuts here.
        start = max(start, retained_from)
        limit = request.limit or policy.max_results
        if limit > policy.max_results:
            refuse("limit_above_cap", 422, f"at most {policy.max_results} results per search "
                   "(no bulk export)")
        return pattern, (start, end), limit

    def _check_budget(self, principal: Principal, policy: Policy, refuse: _Refuse) -> None:
        hour = now_ms() // 3_600_000
        key = f"{self._prefix}rl:{principal.user_id}:{hour}"
        pipe = self._rate.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 3700)
        used = int(pipe.execute()[0])
        if used > policy.max_searches_per_user_per_hour:
            refuse("rate_limited", 429, f"more than {policy.max_searches_per_user_per_hour}"
                   " searches this hour (no bulk export)")


def _label(policy: Policy, purpose_id: str) -> str:
    purpose = policy.prohibited_purposes.get(purpose_id)
    return purpose.label.lower() if purpose else purpose_id.replace("_", " ")
