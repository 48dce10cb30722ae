"""Wiring: the stores and services of the safeguards, built once from settings.

`Safeguards.build()` is what the API, the CLI and the consumers use; tests pass their
own Redis clients and policy. The services are built once, the policy is not: every
request reads the site's policy file again (`AuditedPolicy`, asked through
`AccessRegistry.policy`, also `Safeguards.policy`), so an edited term applies from the
next request on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from hotlists.store import HotlistStore
from kernel.redis_client import redis_from_url
from safeguards.access import AccessRegistry
from safeguards.admin_auth import RecordSigner
from safeguards.alerts import AlertStore
from safeguards.audit import AuditLog
from safeguards.gate import Gate
from safeguards.head_log import PublishedHeads
from safeguards.persistence import ensure_separate
from safeguards.policy import Policy, load_policy
from safeguards.policy_audit import AuditedPolicy
from safeguards.retention import ReadStore
from safeguards.search import SearchService
from safeguards.settings import SafeguardSettings
from safeguards.throttle import FailedLogins
from safeguards.transparency import TransparencyService
from safeguards.verification import VerificationService

__all__ = ["Safeguards"]


@dataclass
class Safeguards:
    data: redis.Redis
    reads: ReadStore
    alerts: AlertStore
    access: AccessRegistry
    audit: AuditLog
    gate: Gate
    search: SearchService
    verification: VerificationService
    transparency: TransparencyService
    hotlists: HotlistStore

    @property
    def policy(self) -> Policy:
        """The policy in force now, read for this call (PolicyError if it cannot be read
        or its change cannot be audited). A request reads it once and keeps that copy."""
        return self.access.policy

    @classmethod
    def build(
        cls,
        settings: SafeguardSettings | None = None,
        *,
        data: redis.Redis | None = None,
        audit: redis.Redis | None = None,
        hotlists: redis.Redis | None = None,
        policy: Policy | None = None,
        require_durable_audit: bool | None = None,
        retention_s: int | None = None,
        bucket_s: int | None = None,
        token_cost: int | None = None,
        signer: RecordSigner | None = None,
    ) -> Safeguards:
        """Build everything. `retention_s` overrides the policy's retention downwards
        only (tests use seconds); above the policy it is refused like any other.
        `token_cost` lowers the scrypt cost of new tokens (tests only); `signer`
        (default: settings.record_signer()) signs and checks the registry's records.
        The hotlists are read from `hotlists`, else from `data` when that is given, else
        from settings.hotlist_url()."""
        settings = settings or SafeguardSettings()
        signer = signer or settings.record_signer()
        policy_file = settings.policy_file
        data_client = data or redis_from_url(settings.data_redis_url())
        audit_client = audit or redis_from_url(settings.audit_url())
        hotlist_store = HotlistStore(hotlists or (data if data is not None else
                                                  redis_from_url(settings.hotlist_url())))
        # The audit's AOF keeps everything forever: never on the reads' server.
        ensure_separate(data_client, audit_client)
        heads = (PublishedHeads(settings.audit_head_file, settings.audit_head_publish_s)
                 if settings.audit_head_file else None)
        audit_log = AuditLog(audit_client, on_head=heads.after_append if heads else None)
        # Every request re-reads the site's policy file (the terms in force are the ones
        # on disk), and a change to it is audited once (`policy_changed`); a Policy
        # passed in stays fixed (tests).
        policy_source: Policy | Callable[[], Policy] = policy or AuditedPolicy(
            policy_file, audit_log)
        durable = (settings.require_durable_audit if require_durable_audit is None
                   else require_durable_audit)
        if durable:
            audit_log.ensure_durable()
        # Retention is the one term read here, once: it sets the expiry of every key the
        # stores write, which no later request can move. A later change applies to
        # searches at once (`ReadStore.retention_in_force_ms`: the lower of the two) and
        # to what the stores write when the process restarts (`policy_audit.RETENTION_NOTE`).
        startup = policy or load_policy(policy_file)
        retention = retention_s if retention_s is not None else startup.retention_s
        bucket = bucket_s if bucket_s is not None else settings.index_bucket_s
        reads = ReadStore(data_client, retention, bucket_s=bucket,
                          max_retention_s=startup.max_retention_s)
        alerts = AlertStore(data_client, retention, bucket_s=bucket,
                            max_retention_s=startup.max_retention_s)
        costs = {} if token_cost is None else {"token_cost": token_cost}
        access = AccessRegistry(data_client, policy_source, signer=signer,
                                token_ttl_s=settings.token_ttl_days * 86_400, **costs)
        gate = Gate(access, audit_log, durability_check_s=1.0 if durable else 0.0,
                    logins=FailedLogins(per_client=settings.login_failures_per_client,
                                        per_user=settings.login_failures_per_user,
                                        lockout_s=settings.login_lockout_s))
        return cls(
            data=data_client, reads=reads, alerts=alerts, access=access,
            audit=audit_log, gate=gate,
            search=SearchService(reads, gate),
            verification=VerificationService(alerts, gate),
            transparency=TransparencyService(reads, alerts, access, audit_log, hotlist_store),
            hotlists=hotlist_store,
        )
