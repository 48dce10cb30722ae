"""The public transparency page: the Denver portal's fields, computed from live data.

Every number is read when the page is requested: reads and hits from the retained
stores (so they can never count data that should be gone), searches and verifications
from the counters the audit trail keeps in the same atomic step as its records (an
`undone` record takes its outcome's count back: an undone verification is not counted),
the agencies from the access registry and the hotlists from the hotlist store. The policy
text (prohibited uses, retention, ...) is the policy in force, read for each page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from hotlists.store import HotlistStore
from kernel.contracts import HotlistSource
from safeguards.access import AccessRegistry, AgencyKind
from safeguards.alerts import AlertStore
from safeguards.audit import AuditLog, Metric
from safeguards.policy import DAY_MS, Policy
from safeguards.retention import ReadStore, now_ms

__all__ = ["TransparencyReport", "TransparencyService", "render_html"]

WINDOW_MS = 30 * 86_400_000

_HOTLIST_NAMES = {
    HotlistSource.NCIC: "NCIC",
    HotlistSource.NCMEC: "NCMEC Amber Alert",
    HotlistSource.CCIC: "Colorado Crime Information Center (CCIC)",
    HotlistSource.LOCAL: "Agency list",
}

ACCEPTABLE_USE = ("Data is used for law enforcement purposes only. Data is owned by the "
                  "{owner} and is never sold to 3rd parties.")
ACCESS_POLICY = ("System search access shall only be conducted in relation to criminal "
                 "investigations or a criminal nexus. A case number, a reason and a permitted "
                 "offence category are required to conduct a search, which is limited to "
                 "authorized law enforcement personnel of {owner} and of agencies with a "
                 "memorandum of understanding. Federal agencies have no access.")
HOTLIST_POLICY = ("Hotlist hits are verified by law enforcement personnel, who compare the "
                  "plate image and confirm the entry in CCIC/NCIC, before any action.")


class TransparencyReport(BaseModel):
    agency: str
    generated_at: datetime
    whats_detected: str
    whats_not_detected: str
    acceptable_use_policy: str
    prohibited_uses: list[str]
    access_policy: str
    hotlist_policy: str
    data_retention_days: float
    audit_trail_retention: str = "indefinite"
    cameras: int = Field(description="Cameras with reads in the last 30 days")
    hotlists_alerted_on: list[str]
    external_organisations_with_access: list[str]
    vehicles_detected_last_30_days: int = Field(description="Vehicle passes read")
    hotlist_hits_last_30_days: int
    historical_hits_last_30_days: int
    searches_last_30_days: int
    searches_refused_last_30_days: int
    alerts_verified_last_30_days: int
    alerts_dismissed_last_30_days: int


@dataclass
class TransparencyService:
    reads: ReadStore
    alerts: AlertStore
    access: AccessRegistry
    audit: AuditLog
    hotlists: HotlistStore | None = None

    def report(self) -> TransparencyReport:
        now = now_ms()
        since = now - WINDOW_MS
        # One reading of the policy in force (PolicyError if it cannot be read) for the
        # whole page; the agencies are the access check's own answer under it.
        policy = self.access.policy
        owner = policy.owning_agency
        external = sorted(
            (a.name for a in self.access.agencies()
             if a.kind == AgencyKind.MOU and self.access.allowed(a, policy)),
            key=str.casefold,
        )
        return TransparencyReport(
            agency=owner,
            generated_at=datetime.fromtimestamp(now / 1000, UTC),
            whats_detected=policy.whats_detected,
            whats_not_detected=policy.whats_not_detected,
            acceptable_use_policy=ACCEPTABLE_USE.format(owner=owner),
            prohibited_uses=[p.label for p in policy.prohibited_purposes.values()],
            access_policy=ACCESS_POLICY.format(owner=owner),
            hotlist_policy=HOTLIST_POLICY,
            # What searches can reach (see ReadStore.retention_in_force_ms).
            data_retention_days=self.reads.retention_in_force_ms(policy) / DAY_MS,
            cameras=len(self.reads.cameras(since, now)),
            hotlists_alerted_on=self._hotlists(policy),
            external_organisations_with_access=external,
            vehicles_detected_last_30_days=self.reads.count_reads(since, now),
            hotlist_hits_last_30_days=self.alerts.count(since, now),
            historical_hits_last_30_days=self.alerts.count(since, now, historical_only=True),
            searches_last_30_days=self.audit.count(Metric.SEARCH_ALLOWED, since),
            searches_refused_last_30_days=self.audit.count(Metric.SEARCH_REFUSED, since),
            alerts_verified_last_30_days=self.audit.count(Metric.ALERT_VERIFIED, since),
            alerts_dismissed_last_30_days=self.audit.count(Metric.ALERT_DISMISSED, since),
        )

    def _hotlists(self, policy: Policy) -> list[str]:
        """Hotlists with live entries; the policy's list when no hotlist store is wired."""
        if self.hotlists is None:
            return list(policy.hotlists_alerted_on)
        status = self.hotlists.status()
        return [_HOTLIST_NAMES.get(src, src.value) for src, s in status.items()
                if s.version is not None and s.entries > 0]


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


_ROWS = (
    ("Policies", [
        ("What's Detected", "whats_detected"),
        ("What's Not Detected", "whats_not_detected"),
        ("Acceptable Use Policy", "acceptable_use_policy"),
        ("Prohibited Uses", "prohibited_uses"),
        ("Access Policy", "access_policy"),
        ("Hotlist Policy", "hotlist_policy"),
        ("System Access History", "audit_trail_retention"),
    ]),
    ("Usage", [
        ("Data retention (in days)", "data_retention_days"),
        ("Cameras reporting in the last 30 days", "cameras"),
        ("Hotlists Alerted On", "hotlists_alerted_on"),
        ("External organizations with access", "external_organisations_with_access"),
        ("Vehicles detected in the last 30 days", "vehicles_detected_last_30_days"),
        ("Hotlist hits in the last 30 days", "hotlist_hits_last_30_days"),
        ("Historical hits in the last 30 days", "historical_hits_last_30_days"),
        ("Searches in the last 30 days", "searches_last_30_days"),
        ("Searches refused in the last 30 days", "searches_refused_last_30_days"),
        ("Alerts verified in the last 30 days", "alerts_verified_last_30_days"),
        ("Alerts dismissed in the last 30 days", "alerts_dismissed_last_30_days"),
    ]),
)


def render_html(report: TransparencyReport) -> str:
    """A plain, script-free HTML page; every value is escaped."""
    data = report.model_dump()
    data["audit_trail_retention"] = ("Data is only retained for "
                                     f"{_fmt(report.data_retention_days)} days; the audit "
                                     "trail of who accessed the system is stored indefinitely.")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.agency)} - ALPR Transparency Portal</title></head><body>",
        f"<h1>{html.escape(report.agency)}</h1><h2>Transparency Portal</h2>",
        f"<p>Last Updated: {html.escape(report.generated_at.isoformat(timespec='seconds'))}</p>",
    ]
    for section, rows in _ROWS:
        parts.append(f"<h3>{section}</h3><dl>")
        for label, key in rows:
            parts.append(f"<dt>{html.escape(label)}</dt><dd>{html.escape(_fmt(data[key]))}</dd>")
        parts.append("</dl>")
    parts.append("</body></html>")
    return "\n".join(parts)
