"""Every term of the policy file is the one in force from the next request on.

A running API (built once, before the edit) must refuse the next search an edited term
forbids, audit that refusal, and record the edit itself once as `policy_changed`
naming the term. The MOU list has its own tests (test_safeguards_access.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from policy_helpers import edit, site_policy
from safeguard_builders import Stack, build_stack, make_read

from safeguards.api import create_app
from safeguards.audit import AuditRecord
from safeguards.retention import now_ms
from sim.local_services import LocalRedis

SEARCH = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
          "reason": "Armed robbery on Colfax, suspect vehicle seen leaving"}


@pytest.fixture
def policy_file(data_server: LocalRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                server: LocalRedis) -> Path:
    return site_policy(tmp_path, monkeypatch, server, data_server)


@pytest.fixture
def running(data_client: redis.Redis, client: redis.Redis, policy_file: Path
            ) -> tuple[Stack, TestClient]:
    """A running API over the site policy: built once, before any edit."""
    stack = build_stack(data_client, client)
    stack.sg.reads.put(make_read("ABC123", at_ms=now_ms() - 2 * 86_400_000))
    return stack, TestClient(create_app(stack.sg))


def _search(stack: Stack, http: TestClient, **changes: Any) -> tuple[int, dict[str, Any]]:
    res = http.post("/search", json={**SEARCH, **changes}, headers=stack.auth("det"))
    return res.status_code, res.json()


def _records_since(stack: Stack, seq: int) -> list[AuditRecord]:
    return [r for r in stack.sg.audit.records() if r.seq > seq]


def test_an_offence_taken_off_the_permitted_list_is_refused_at_once(
    running: tuple[Stack, TestClient], policy_file: Path
) -> None:
    stack, http = running
    status, body = _search(stack, http)
    assert (status, body["count"]) == (200, 1)
    before = stack.sg.audit.head().seq

    # The city drops robbery from the permitted offences; nothing restarts.
    edit(policy_file, "  robbery: Robbery\n", "")
    status, body = _search(stack, http)
    assert (status, body["error"]) == (422, "offence_not_permitted")
    assert "'robbery' is not a permitted category" in body["detail"]
    assert _search(stack, http, offence="burglary")[0] == 200

    change, refusal, allowed = _records_since(stack, before)
    assert (change.action, change.decision) == ("policy_changed", "in_force")
    assert change.details["terms_changed"] == ["permitted_offences"]
    assert change.details["changes"] == {
        "permitted_offences": {"added": [], "removed": ["robbery"], "changed": []}}
    assert (refusal.actor, refusal.action, refusal.decision, refusal.seq) == (
        "det", "search", "refused:offence_not_permitted", body["audit_seq"])
    assert refusal.details["offence"] == "robbery"
    assert (allowed.action, allowed.decision) == ("search", "allowed")

    # Back on the list: allowed again, and that change is recorded too.
    edit(policy_file, "  carjacking:", "  robbery: Robbery\n  carjacking:")
    assert _search(stack, http)[0] == 200
    last = [r for r in _records_since(stack, before) if r.action == "policy_changed"][-1]
    assert last.details["changes"]["permitted_offences"]["added"] == ["robbery"]
    assert stack.sg.audit.verify().ok


def test_a_term_added_to_a_prohibited_purpose_refuses_the_next_search(
    running: tuple[Stack, TestClient], policy_file: Path
) -> None:
    stack, http = running
    reason = "Stolen car, plate noted at a window tint check on Federal Blvd"
    assert _search(stack, http, offence="motor_vehicle_theft", reason=reason)[0] == 200
    before = stack.sg.audit.head().seq

    # Traffic enforcement is prohibited; the city adds a keyword it had missed.
    edit(policy_file, "moving violation]", "moving violation, window tint]")
    status, body = _search(stack, http, offence="motor_vehicle_theft", reason=reason)
    assert (status, body["error"]) == (403, "prohibited_purpose")
    assert body["detail"] == ("the reason points at a prohibited purpose: traffic "
                              "enforcement (matched 'window tint')")

    change, refusal = _records_since(stack, before)
    assert change.action == "policy_changed"
    assert change.details["changes"] == {
        "prohibited_purposes": {"added": [], "removed": [], "changed": ["traffic_enforcement"]}}
    assert (refusal.actor, refusal.decision, refusal.seq) == (
        "det", "refused:prohibited_purpose", body["audit_seq"])

    # A whole new prohibited purpose: refused by name as well, and on the public page.
    edit(policy_file, "prohibited_purposes:\n", "prohibited_purposes:\n  repossession:\n"
         "    label: Vehicle repossession\n    keywords: [repo agent]\n")
    status, body = _search(stack, http, offence="repossession")
    assert (status, body["error"]) == (403, "prohibited_purpose")
    assert "vehicle repossession" in body["detail"]
    assert "Vehicle repossession" in http.get("/transparency").json()["prohibited_uses"]


def test_caps_and_retention_follow_the_file(
    running: tuple[Stack, TestClient], policy_file: Path
) -> None:
    stack, http = running
    two_days_ago = (datetime.now(UTC) - timedelta(days=2, minutes=5)).isoformat()
    assert _search(stack, http, limit=10)[0] == 200
    status, body = _search(stack, http, start=two_days_ago)
    assert (status, body["count"], body["retention_days"]) == (200, 1, 30)
    before = stack.sg.audit.head().seq

    edit(policy_file, "max_results: 200", "max_results: 5")
    status, body = _search(stack, http, limit=10)
    assert (status, body["error"], body["detail"]) == (
        422, "limit_above_cap", "at most 5 results per search (no bulk export)")

    # Retention cut to one day: the two-day-old read is out of reach of the next search,
    # though the running stores keep writing 30 days (key expiry is set on write).
    edit(policy_file, "\nretention_days: 30\n", "\nretention_days: 1\n")
    status, body = _search(stack, http)
    assert (status, body["count"], body["retention_days"]) == (200, 0, 1)
    status, body = _search(stack, http, start=two_days_ago)
    assert (status, body["error"]) == (422, "window_outside_retention")
    assert "kept 1 days" in body["detail"]
    assert http.get("/transparency").json()["data_retention_days"] == 1
    health = http.get("/healthz").json()
    assert health["policy"] == {"readable": True, "retention_days": 1,
                                "stores_retention_days": 30,
                                "restart_to_apply_retention": True}

    changes = [r for r in _records_since(stack, before) if r.action == "policy_changed"]
    assert [c.details["terms_changed"] for c in changes] == [["max_results"],
                                                            ["retention_days"]]
    assert changes[0].details["changes"] == {"max_results": {"from": 200, "to": 5}}
    assert "retention_note" not in changes[0].details
    assert changes[1].details["changes"] == {"retention_days": {"from": 30, "to": 1}}
    assert "restarted" in changes[1].details["retention_note"]


def test_an_invalid_policy_refuses_everyone_and_hides_the_public_page(
    running: tuple[Stack, TestClient], policy_file: Path
) -> None:
    stack, http = running
    # Valid YAML, refused by the contract checks: an offence both permitted and prohibited.
    edit(policy_file, "  robbery: Robbery\n", "  robbery: Robbery\n  traffic_enforcement: x\n")
    status, body = _search(stack, http)
    assert (status, body["error"]) == (503, "policy_unavailable")
    last = list(stack.sg.audit.records())[-1]
    assert (last.seq, last.decision) == (body["audit_seq"], "refused:policy_unavailable")
    res = http.get("/transparency")
    assert (res.status_code, res.json()["error"]) == (503, "policy_unavailable")
    assert http.get("/healthz").json()["policy"]["readable"] is False

    edit(policy_file, "  traffic_enforcement: x\n", "")
    assert _search(stack, http)[0] == 200
    assert http.get("/transparency").status_code == 200
