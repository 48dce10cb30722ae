"""Alerts and their verifications, retained exactly as long as the read they carry.

An alert holds the full read (plate, camera, time, crop), so it is personal data under
the same 30-day rule. Key layout (prefix `alpr:sg:`):

    alert:{alert_id}       STRING  Alert JSON, PXAT read capture + retention
    verif:{alert_id}       STRING  Verification JSON, same expiry (SET NX: once only)
    ab:{b}:a               ZSET    alert_id -> read capture ms   (hotlist hits)
    ab:{b}:h               ZSET    alert_id -> read capture ms   (historical hits)

Who verified what is also in the audit trail, which is kept indefinitely; that record
names the alert id, the hotlist source and entry id, not the plate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

import redis
from pydantic import BaseModel, ConfigDict

from kernel.contracts import Alert
from safeguards import KEY_PREFIX
from safeguards.policy import DAY_S, MAX_RETENTION_DAYS
from safeguards.retention import check_retention, now_ms

__all__ = ["AlertStore", "CheckResult", "Outcome", "Verification"]


class Outcome(StrEnum):
    VERIFIED = "verified"  # image matches and the entry is confirmed active
    DISMISSED = "dismissed"  # misread, entry cleared, vehicle mismatch, ...


class CheckResult(StrEnum):
    """What NCIC/CCIC said when the dispatcher confirmed the entry."""

    CONFIRMED_ACTIVE = "confirmed_active"
    NOT_FOUND = "not_found"
    CLEARED = "cleared"
    NOT_CHECKED = "not_checked"  # only for a dismissal on the image alone (misread)


class Verification(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    outcome: Outcome
    check_system: str
    check_result: CheckResult
    image_matches: bool
    note: str = ""
    user_id: str
    agency: str
    at: int  # epoch ms
    audit_seq: int | None = None
    hit_outcome: str | None = None  # how the hit ended (verification.HitOutcome)


class AlertStore:
    def __init__(
        self,
        client: redis.Redis,
        retention_s: int = MAX_RETENTION_DAYS * DAY_S,
        *,
        bucket_s: int = 3600,
        max_retention_s: int = MAX_RETENTION_DAYS * DAY_S,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        check_retention(retention_s, bucket_s, max_retention_s)
        self.client = client
        self.retention_ms = retention_s * 1000
        self.bucket_ms = bucket_s * 1000
        self.prefix = prefix
        self._clock = clock

    def alert_key(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}"

    def verification_key(self, alert_id: str) -> str:
        return f"{self.prefix}verif:{alert_id}"

    def _index(self, b: int, kind: str) -> str:
        return f"{self.prefix}ab:{b}:{kind}"

    def _expiry(self, alert: Alert, now: int) -> tuple[int, int]:
        ts = min(alert.read.first_seen, now)
        return ts, ts + self.retention_ms

    def put_many(self, alerts: Iterable[Alert]) -> int:
        """Store alerts (replays overwrite the same id); returns how many were stored."""
        now = self._clock()
        pipe = self.client.pipeline(transaction=True)
        stored = 0
        for alert in alerts:
            ts, expire_at = self._expiry(alert, now)
            if expire_at <= now:
                continue
            b = ts // self.bucket_ms
            bucket_expiry = (b + 1) * self.bucket_ms + self.retention_ms
            pipe.set(self.alert_key(alert.alert_id), alert.model_dump_json(), pxat=expire_at)
            for kind in ("a", "h") if alert.historical else ("a",):
                pipe.zadd(self._index(b, kind), {alert.alert_id: ts})
                pipe.pexpireat(self._index(b, kind), bucket_expiry)
            stored += 1
        if stored:
            pipe.execute()
        return stored

    def put(self, alert: Alert) -> bool:
        return self.put_many([alert]) == 1

    def get(self, alert_id: str) -> Alert | None:
        raw = self.client.get(self.alert_key(alert_id))
        return None if raw is None else Alert.model_validate_json(raw)

    def exists(self, alert_id: str) -> bool:
        return bool(self.client.exists(self.alert_key(alert_id)))

    def count(self, start_ms: int, end_ms: int, *, historical_only: bool = False) -> int:
        """Retained alerts whose read was captured in [start, end]."""
        now = self._clock()
        lo = max(start_ms, now - self.retention_ms + 1)
        hi = min(end_ms, now)
        if lo > hi:
            return 0
        kind = "h" if historical_only else "a"
        pipe = self.client.pipeline(transaction=False)
        for b in range(hi // self.bucket_ms, lo // self.bucket_ms - 1, -1):
            pipe.zcount(self._index(b, kind), lo, hi)
        return int(sum(pipe.execute()))

    # --- verifications -----------------------------------------------------------------

    def record_verification(self, alert: Alert, verification: Verification) -> bool:
        """Store the verification unless the alert already has one (False then)."""
        _, expire_at = self._expiry(alert, self._clock())
        return bool(self.client.set(self.verification_key(alert.alert_id),
                                    verification.model_dump_json(), nx=True, pxat=expire_at))

    def forget_verification(self, alert_id: str) -> None:
        """Undo record_verification when its audit record could not be written."""
        self.client.delete(self.verification_key(alert_id))

    def verification(self, alert_id: str) -> Verification | None:
        raw = self.client.get(self.verification_key(alert_id))
        return None if raw is None else Verification.model_validate_json(raw)
