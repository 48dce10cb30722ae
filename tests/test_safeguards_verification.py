"""Rule 5: POST /alerts/{id}/verification records who verified or dismissed an alert and
what NCIC/CCIC said; audited and counted."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from alpr.contracts import Alert
from connectors.local_services import LocalRedis
from safeguards.testing import OWNER_ID, Stack, make_alert, make_entry, make_read

VERIFIED = {"outcome": "verified", "check_system": "NCIC", "check_result": "confirmed_active",
            "image_matches": True, "note": "Plate and vehicle match, NCIC entry active"}
DISMISSED = {"outcome": "dismissed", "check_system": "CCIC", "check_result": "cleared",
             "image_matches": True, "note": "Vehicle recovered yesterday"}


@pytest.fixture
def alert(stack: Stack) -> Alert:
    alert = make_alert(make_read("STO123"), make_entry("STO123", "NCIC-778"))
    stack.sg.alerts.put(alert)
    return alert


def post(http: TestClient, stack: Stack, alert_id: str, body: dict, user: str = "disp"
         ) -> httpx.Response:
    return http.post(f"/alerts/{alert_id}/verification", json=body, headers=stack.auth(user))


def test_verification_records_who_and_the_ncic_result(http: TestClient, stack: Stack,
                                                      alert: Alert) -> None:
    res = post(http, stack, alert.alert_id, VERIFIED)
    assert res.status_code == 200, res.json()
    body = res.json()
    assert (body["user_id"], body["agency"], body["outcome"], body["check_result"]) == (
        "disp", OWNER_ID, "verified", "confirmed_active")
    stored = stack.sg.alerts.verification(alert.alert_id)
    assert stored is not None and stored.user_id == "disp" and stored.check_system == "NCIC"
    request, record = list(stack.sg.audit.records())[-2:]
    assert body["audit_seq"] == record.seq
    assert (record.actor, record.action, record.decision) == (
        "disp", "alert_verification", "verified")
    # Written ahead of the verification: the attempt, then its outcome naming it.
    assert (request.actor, request.action, request.decision) == (
        "disp", "alert_verification", "requested")
    assert record.details["request_seq"] == request.seq
    assert {k: v for k, v in record.details.items() if k != "request_seq"} == request.details
    d = record.details
    assert (d["alert_id"], d["source"], d["entry_id"], d["check_result"]) == (
        alert.alert_id, "NCIC", "NCIC-778", "confirmed_active")
    assert "STO123" not in str(d)  # the indefinite audit keeps no plate


def test_dismissal_is_recorded(http: TestClient, stack: Stack, alert: Alert) -> None:
    res = post(http, stack, alert.alert_id, DISMISSED)
    assert res.status_code == 200 and res.json()["outcome"] == "dismissed"


@pytest.mark.parametrize("change", [{"check_result": "not_checked"},
                                    {"check_result": "not_found"},
                                    {"image_matches": False}])
def test_verified_needs_matching_image_and_active_entry(
    http: TestClient, stack: Stack, alert: Alert, change: dict
) -> None:
    res = post(http, stack, alert.alert_id, {**VERIFIED, **change})
    assert (res.status_code, res.json()["error"]) == (422, "verification_incomplete")
    assert stack.sg.alerts.verification(alert.alert_id) is None
    assert list(stack.sg.audit.records())[-1].decision == "refused:verification_incomplete"


def test_an_alert_is_verified_once(http: TestClient, stack: Stack, alert: Alert) -> None:
    assert post(http, stack, alert.alert_id, VERIFIED).status_code == 200
    res = post(http, stack, alert.alert_id, DISMISSED)
    assert (res.status_code, res.json()["error"]) == (409, "already_verified")
    assert stack.sg.alerts.verification(alert.alert_id).outcome == "verified"


def test_unknown_alert(http: TestClient, stack: Stack) -> None:
    res = post(http, stack, "0" * 32, VERIFIED)
    assert (res.status_code, res.json()["error"]) == (404, "alert_not_found")


def test_searchers_cannot_verify(http: TestClient, stack: Stack, alert: Alert) -> None:
    res = post(http, stack, alert.alert_id, VERIFIED, user="det")
    assert (res.status_code, res.json()["error"]) == (403, "missing_role")


def test_verifications_are_counted(http: TestClient, stack: Stack) -> None:
    alerts = [make_alert(make_read(f"CNT{i:03d}"), make_entry(f"CNT{i:03d}")) for i in range(5)]
    stack.sg.alerts.put_many(alerts)
    for a in alerts[:3]:
        assert post(http, stack, a.alert_id, VERIFIED).status_code == 200
    for a in alerts[3:]:
        assert post(http, stack, a.alert_id, DISMISSED).status_code == 200
    post(http, stack, alerts[0].alert_id, DISMISSED)  # refused (409): not counted
    report = http.get("/transparency").json()
    assert (report["alerts_verified_last_30_days"], report["alerts_dismissed_last_30_days"]) == (
        3, 2)


def test_verification_undone_when_audit_fails(http: TestClient, stack: Stack, alert: Alert,
                                              server: LocalRedis) -> None:
    # The audit head vanishing makes appends fail; the verification must not stick.
    server.client().delete(stack.sg.audit.head_key)
    res = post(http, stack, alert.alert_id, VERIFIED)
    assert (res.status_code, res.json()["error"]) == (503, "audit_unavailable")
    assert stack.sg.alerts.verification(alert.alert_id) is None


def test_cli_lists_and_disables_users(stack: Stack, server: LocalRedis,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from alpr.cli import app

    monkeypatch.setenv("ALPR_SG_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    runner = CliRunner()
    result = runner.invoke(app, ["user", "add", "newdisp", "--agency", OWNER_ID, "--role",
                                 "verify", "--operator", "sgt-k"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert stack.sg.access.authenticate(token).user_id == "newdisp"
    assert runner.invoke(app, ["user", "disable", "newdisp"]).exit_code == 0
    assert stack.sg.access.user("newdisp").enabled is False
    result = runner.invoke(app, ["agency", "add", "FBI Denver", "--mou-reference", "X"])
    assert result.exit_code == 1 and "federal" in result.output
    result = runner.invoke(app, ["agency", "list"])
    assert "aurora-co-pd" in result.output
