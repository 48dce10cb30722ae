"""Settings of the safeguards services: environment variables `ALPR_SG_<NAME>`.

The audit trail lives in its own Redis (`ALPR_SG_AUDIT_REDIS_URL`, never the data
Redis: `persistence.ensure_separate`), run with
`--appendonly yes --appendfsync always` so an acknowledged audit record is on disk
before the search it records returns. The API refuses to start against an audit Redis
that does not say so (`require_durable_audit`), because an audit that a power cut can
erase is not the "stored indefinitely" trail the contract asks for.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.settings import Settings
from safeguards.admin_auth import RecordSigner

__all__ = ["SafeguardSettings"]


class SafeguardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALPR_SG_")

    redis_url: str = Field("", description=(
        "Redis of the reads, alerts, agencies and users; empty: `ALPR_REDIS_URL`"))
    audit_redis_url: str = Field("", description=(
        "Redis of the audit trail: a server of its own, never the data Redis (refused at "
        "start: its append-only file would keep every read past retention); required"))
    require_durable_audit: bool = Field(True, description=(
        "refuse to start against an audit Redis without `--appendonly yes --appendfsync "
        "always`"))
    hotlist_redis_url: str = Field("", description=(
        "Redis of the hotlists (transparency, historical hits); empty: `ALPR_REDIS_URL`, "
        "where the importers put them, whichever Redis the safeguards' own data is in"))
    policy_file: Path | None = Field(None, description=(
        "the site's policy (contract terms); empty: `safeguards/default_policy.yaml`. "
        "Re-read on every request"))

    host: str = Field("127.0.0.1", description="address the HTTP API listens on")
    port: int = Field(8088, description="port of the HTTP API")
    max_body_bytes: int = Field(16 * 1024, ge=1024, description=(
        "larger request bodies are refused with 413 (audited)"))

    # One hour keeps the number of keys per search small.
    index_bucket_s: int = Field(3600, ge=1, description=(
        "index bucket width: index keys outlive a read by at most this long (and are "
        "filtered out meanwhile)"))
    disk_sweep_s: int = Field(3600, ge=60, le=86_400, description=(
        "how often `alpr serve` rewrites the data Redis's AOF / RDB snapshot so that an "
        "expired read leaves its disk within this long"))
    record_key_file: Path | None = Field(None, description=(
        "HMAC key (hex, `alpr admin keygen`) that signs agency and user records; kept "
        "outside Redis, readable by the API and the administrators only. Required"))
    admins_file: Path | None = Field(None, description=(
        "administrators' token hashes and TOTP secrets (JSON, mode 0600, `alpr admin "
        "add`); outside Redis. Required by the `alpr agency` / `alpr user` changes"))
    token_ttl_days: int = Field(90, ge=1, le=365, description=(
        "a user's token expires this many days after it was issued (rotate-token)"))
    login_failures_per_client: int = Field(30, ge=1, description=(
        "failed logins from one address within `ALPR_SG_LOGIN_LOCKOUT_S` before that "
        "address is refused (429 `login_throttled`, audited) for the rest of the period"))
    login_failures_per_user: int = Field(5, ge=1, description=(
        "consecutive failed logins claiming one user id before that user is locked out "
        "for `ALPR_SG_LOGIN_LOCKOUT_S` (CJIS 5.5.3: at most 5)"))
    login_lockout_s: int = Field(600, ge=1, description=(
        "the failed-login counting and lock-out period"))
    audit_head_file: Path | None = Field(None, description=(
        "file the audit chain head is appended to as the trail grows (make it "
        "append-only, copy it off the host); `alpr audit verify` checks every head in it "
        "by default, so a wiped or re-chained trail does not verify"))
    audit_head_publish_s: float = Field(60, ge=0, description=(
        "at most one head per this long is appended to `ALPR_SG_AUDIT_HEAD_FILE` (on the "
        "first audit record after it)"))
    trusted_proxies: str = Field("", description=(
        "comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For names the client (audited, throttled); empty: the header is "
        "ignored from everyone, local processes included"))
    kafka_group: str = Field("alpr-safeguards", description=(
        "Kafka consumer group of the ingest and historical-hit consumers"))

    # The dispatch console (safeguards/console.py).
    console_idle_timeout_s: int = Field(900, ge=10, description=(
        "a dispatch console session ends after this long without a click or key press "
        "(the page then drops every plate it showed)"))
    console_backlog_h: float = Field(12, gt=0, description=(
        "the console shows alerts produced this long ago and since (read again from "
        "`alpr.alerts` when the API starts)"))
    console_unsure_below: float = Field(0.8, ge=0, le=1, description=(
        "a read character with a confidence below this is marked unsure on the console"))
    console_kafka: bool = Field(True, description=(
        "`alpr serve` follows `alpr.alerts` (at `ALPR_KAFKA_BOOTSTRAP`) for the console"))

    def data_redis_url(self) -> str:
        return self.redis_url or Settings().redis_url

    def audit_url(self) -> str:
        if not self.audit_redis_url:
            raise ValueError("ALPR_SG_AUDIT_REDIS_URL is not set: the audit trail needs a "
                             "Redis server of its own (appendonly yes, appendfsync always)")
        return self.audit_redis_url

    def record_signer(self) -> RecordSigner:
        if self.record_key_file is None:
            raise ValueError("ALPR_SG_RECORD_KEY_FILE is not set: agency and user records "
                             "are signed with a key kept outside Redis (`alpr admin keygen`)")
        return RecordSigner.from_file(self.record_key_file)

    def hotlist_url(self) -> str:
        return self.hotlist_redis_url or Settings().redis_url
