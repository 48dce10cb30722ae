"""Settings of the safeguards services: environment variables `ALPR_SG_<NAME>`.

The audit trail lives in its own Redis (`ALPR_SG_AUDIT_REDIS_URL`), run with
`--appendonly yes --appendfsync always` so an acknowledged audit record is on disk
before the search it records returns. The API refuses to start against an audit Redis
that does not say so (`require_durable_audit`), because an audit that a power cut can
erase is not the "stored indefinitely" trail the contract asks for.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from alpr.config import Settings

__all__ = ["SafeguardSettings"]


class SafeguardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALPR_SG_")

    # Reads, alerts, agencies, users. Empty: the flow's ALPR_REDIS_URL.
    redis_url: str = ""
    # The audit trail. Empty: the same Redis as the data (acceptable only when that
    # server runs with appendfsync always, which require_durable_audit checks).
    audit_redis_url: str = ""
    require_durable_audit: bool = True
    # The hotlists (transparency, historical hits). Empty: the flow's ALPR_REDIS_URL,
    # where the importers put them, whichever Redis the safeguards' own data is in.
    hotlist_redis_url: str = ""
    policy_file: Path | None = None

    # HTTP API.
    host: str = "127.0.0.1"
    port: int = 8088
    max_body_bytes: int = Field(16 * 1024, ge=1024)

    # Index bucket width: index keys outlive a read by at most this long (and are
    # filtered out meanwhile). One hour keeps the number of keys per search small.
    index_bucket_s: int = Field(3600, ge=1)
    # Kafka consumer group of the ingest and historical-hit consumers.
    kafka_group: str = "alpr-safeguards"

    def data_redis_url(self) -> str:
        return self.redis_url or Settings().redis_url

    def audit_url(self) -> str:
        return self.audit_redis_url or self.data_redis_url()

    def hotlist_url(self) -> str:
        return self.hotlist_redis_url or Settings().redis_url
