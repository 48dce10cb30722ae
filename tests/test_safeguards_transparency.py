"""Rule 6: the transparency statistics, from live data, as JSON and a plain HTML page."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient
from safeguard_builders import MOU_ID, Stack, build_stack, make_alert, make_entry, make_read

from hotlists.store import HotlistStore
from kernel.contracts import HotlistSource
from safeguards.access import AgencyKind
from safeguards.admin import Admin
from safeguards.api import create_app
from safeguards.audit import AuditLog, Metric
from safeguards.policy import DAY_S, load_policy
from safeguards.retention import now_ms
from sim.local_services import LocalRedis

SEARCH = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
          "reason": "Armed robbery at a 7-Eleven, suspect vehicle seen leaving"}
PORTAL_FIELDS = {
    "data_retention_days", "cameras", "hotlists_alerted_on",
    "external_organisations_with_access", "vehicles_detected_last_30_days",
    "hotlist_hits_last_30_days", "searches_last_30_days", "alerts_verified_last_30_days",
    "alerts_dismissed_last_30_days", "whats_detected", "whats_not_detected",
    "prohibited_uses", "access_policy", "acceptable_use_policy", "hotlist_policy",
}


def test_empty_system(http: TestClient) -> None:
    report = http.get("/transparency").json()
    assert set(report) >= PORTAL_FIELDS
    assert report["data_retention_days"] == 30
    assert report["audit_trail_retention"] == "indefinite"
    assert (report["cameras"], report["vehicles_detected_last_30_days"],
            report["hotlist_hits_last_30_days"], report["searches_last_30_days"]) == (0, 0, 0, 0)
    assert len(report["external_organisations_with_access"]) == 66
    assert "Denver CO PD" not in report["external_organisations_with_access"]
    assert "Immigration enforcement" in report["prohibited_uses"]


def test_statistics_follow_live_data(http: TestClient, stack: Stack) -> None:
    sg = stack.sg
    now = now_ms()
    reads = [make_read(f"VEH{i:03d}", camera=f"cam-{i % 4}", at_ms=now - i * 60_000)
             for i in range(12)]
    sg.reads.put_many(reads)
    sg.reads.put(make_read("OLD001", at_ms=now - 31 * DAY_S * 1000))  # never stored
    sg.alerts.put_many([
        make_alert(reads[0], make_entry(reads[0].plate, "E1")),
        make_alert(reads[1], make_entry(reads[1].plate, "E2")),
        make_alert(reads[2], make_entry(reads[2].plate, "E3"), historical=True),
    ])
    headers = stack.auth("det")
    for _ in range(3):
        assert http.post("/search", json=SEARCH, headers=headers).status_code == 200
    http.post("/search", json={**SEARCH, "reason": "personal use, my ex partner"},
              headers=headers)
    http.post("/search", json=SEARCH)  # no token: refused and audited, not counted
    Admin(sg.access, sg.audit, "ops").set_agency_enabled(MOU_ID, False)
    hotlists = HotlistStore(sg.data)
    hotlists.replace_source(HotlistSource.NCIC, [make_entry("VEH000", "E1")])
    hotlists.replace_source(HotlistSource.NCMEC, [make_entry("VEH001", "A1",
                                                             source=HotlistSource.NCMEC)])
    hotlists.replace_source(HotlistSource.CCIC, [], allow_empty=True)  # emptied: no alerts

    report = http.get("/transparency").json()
    assert report["cameras"] == 4
    assert report["vehicles_detected_last_30_days"] == 12
    assert report["hotlist_hits_last_30_days"] == 3
    assert report["historical_hits_last_30_days"] == 1
    assert report["searches_last_30_days"] == 3
    assert report["searches_refused_last_30_days"] == 1
    assert "Aurora CO PD" not in report["external_organisations_with_access"]
    assert len(report["external_organisations_with_access"]) == 65
    assert report["hotlists_alerted_on"] == ["NCIC", "NCMEC Amber Alert"]


def test_only_the_last_30_days_are_counted(server: LocalRedis, data_client: redis.Redis
                                          ) -> None:
    c = server.client()
    c.flushall()
    # A month and a day ago: one of everything the portal counts from the audit trail.
    month_ago = now_ms() - 31 * DAY_S * 1000
    past = AuditLog(c, clock=lambda: month_ago)
    for metric in Metric:
        past.append(actor="det", agency="denver-co-pd", action="x", decision="allowed",
                    metrics=[metric])
    stack = build_stack(data_client, c)
    http = TestClient(create_app(stack.sg))
    fields = ("searches_last_30_days", "searches_refused_last_30_days",
              "alerts_verified_last_30_days", "alerts_dismissed_last_30_days")
    assert [http.get("/transparency").json()[f] for f in fields] == [0, 0, 0, 0]
    assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
    assert [http.get("/transparency").json()[f] for f in fields] == [1, 0, 0, 0]
    # A counter drops what is older than 30 days when it counts again; the audit records
    # themselves are kept forever.
    assert c.zcard(f"alpr:sg:stats:{Metric.SEARCH_ALLOWED}") == 1
    assert len([r for r in stack.sg.audit.records() if r.action == "x"]) == len(Metric)


def _with_mou_agency(data_client: redis.Redis, client: redis.Redis, name: str, mou_reference: str
                     ) -> tuple[Stack, TestClient]:
    """A stack whose policy lists one more MOU agency, registered under its MOU."""
    policy = load_policy(mou_agencies=[*load_policy().mou_agencies, name])
    stack = build_stack(data_client, client, policy=policy)
    Admin(stack.sg.access, stack.sg.audit, "ops").add_agency(name, AgencyKind.MOU,
                                                             mou_reference)
    return stack, TestClient(create_app(stack.sg))


def test_new_mou_agency_appears(data_client: redis.Redis, client: redis.Redis) -> None:
    _, http = _with_mou_agency(data_client, client, "Greeley CO PD", "MOU-2025-17")
    assert "Greeley CO PD" in http.get("/transparency").json()[
        "external_organisations_with_access"]


def test_html_page_has_the_portal_fields_and_escapes(data_client: redis.Redis,
                                                     client: redis.Redis) -> None:
    stack, http = _with_mou_agency(data_client, client,
                                   "<script>alert(1)</script> CO PD", "MOU-1")
    stack.sg.reads.put_many([make_read(f"HTM{i}00", camera="cam-1") for i in range(3)])
    res = http.get("/transparency.html")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    for label in ("Data retention (in days)", "Cameras reporting in the last 30 days",
                  "Hotlists Alerted On", "External organizations with access",
                  "Vehicles detected in the last 30 days", "Hotlist hits in the last 30 days",
                  "Searches in the last 30 days", "Alerts verified in the last 30 days",
                  "Alerts dismissed in the last 30 days", "Prohibited Uses"):
        assert f">{label}<" in page  # a label of its own (the portal page, portal.py)
    assert '<span class="value">30</span>' in page and '<span class="value">3</span>' in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Denver CO PD" in page


def test_cli_prints_the_same_report(data_server: LocalRedis, stack: Stack, server: LocalRedis,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from alpr.cli import app

    monkeypatch.setenv("ALPR_SG_REDIS_URL", data_server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    # The hotlists live where the importers put them (the flow's Redis), not
    # necessarily next to the safeguards' data.
    monkeypatch.setenv("ALPR_REDIS_URL", server.url_for(1))
    hotlists = server.client(db=1)
    hotlists.flushdb()
    HotlistStore(hotlists).replace_source(HotlistSource.CCIC, [
        make_entry("CLI999", "C1", source=HotlistSource.CCIC)])
    stack.sg.reads.put(make_read("CLI123"))
    result = CliRunner().invoke(app, ["transparency"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["vehicles_detected_last_30_days"] == 1
    assert report["hotlists_alerted_on"] == ["Colorado Crime Information Center (CCIC)"]
    hotlists.flushdb()


def test_healthz_reports_audit_durability(http: TestClient) -> None:
    res = http.get("/healthz")
    assert res.status_code == 200
    assert res.json()["audit_durability"] == {"appendonly": "yes", "appendfsync": "always"}
