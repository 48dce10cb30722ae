"""Rule 8: hostile requests get a clear refusal, are audited, and change no data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from safeguard_builders import (
    MOU_ID,
    Stack,
    build_stack,
    data_snapshot,
    make_alert,
    make_entry,
    make_read,
)

from safeguards.admin import Admin
from safeguards.api import create_app
from safeguards.audit import AuditRecord

VALID = {
    "plate": "ABC123",
    "case_number": "2025-004711",
    "offence": "robbery",
    "reason": "Armed robbery at a 7-Eleven, suspect vehicle seen leaving",
}
VERIFY = {"outcome": "verified", "check_system": "NCIC", "check_result": "confirmed_active",
          "image_matches": True}


@pytest.fixture
def stack(data_client: redis.Redis, client: redis.Redis) -> Stack:
    stack = build_stack(data_client, client)
    read = make_read("ABC123", camera="cam-1")
    stack.sg.reads.put(read)
    stack.sg.alerts.put(make_alert(read, make_entry("ABC123")))
    return stack


@pytest.fixture
def http(stack: Stack) -> TestClient:
    return TestClient(create_app(stack.sg, max_body_bytes=16 * 1024))


@pytest.fixture
def alert_id(stack: Stack) -> str:
    (key,) = stack.sg.data.scan_iter(match="alpr:sg:alert:*")
    return key.decode().rsplit(":", 1)[1]


class Guard:
    """Asserts a request was refused as expected, audited once, and changed no data."""

    def __init__(self, stack: Stack, client: redis.Redis) -> None:
        self.stack = stack
        self.client = client

    def refused(self, send: Any, status: int, code: str, *, actor: str = "anonymous"
                ) -> AuditRecord:
        before_data = data_snapshot(self.client)
        before_seq = self.stack.sg.audit.head().seq
        res = send()
        assert res.status_code == status, res.text
        body = res.json()
        assert body["error"] == code and body["detail"]
        records = list(self.stack.sg.audit.records())[before_seq:]
        assert len(records) == 1, records  # audited, exactly once
        record = records[0]
        assert record.decision == f"refused:{code}"
        assert body["audit_seq"] == record.seq
        assert record.actor == actor
        assert data_snapshot(self.client) == before_data  # nothing changed
        assert self.stack.sg.audit.verify().ok
        return record


@pytest.fixture
def guard(stack: Stack, client: redis.Redis) -> Guard:
    return Guard(stack, client)


# --- credentials -----------------------------------------------------------------------


def test_missing_credentials(http: TestClient, guard: Guard) -> None:
    res = guard.refused(lambda: http.post("/search", json=VALID), 401, "missing_token")
    assert res.action == "search"


def test_wrong_scheme_is_missing_credentials(http: TestClient, guard: Guard,
                                             stack: Stack) -> None:
    basic = {"Authorization": "Basic " + stack.tokens["det"]}
    guard.refused(lambda: http.post("/search", json=VALID, headers=basic), 401,
                  "missing_token")


@pytest.mark.parametrize("token", ["garbage", "sg1.det", "sg1.det.", "sg1..x", "Bearer",
                                   "sg1.det.wrongsecretwrongsecretwrongsecret",
                                   "sg1.nobody.wrongsecretwrongsecretwrongsecret",
                                   "sg1.DET.x" + "A" * 40, "x" * 5000])
def test_wrong_credentials(http: TestClient, guard: Guard, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    res = http.post("/search", json=VALID, headers=headers)
    assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
    assert res.json()["detail"] in ("invalid credentials", "a bearer token is required")
    record = guard.refused(lambda: http.post("/search", json=VALID, headers=headers), 401,
                           res.json()["error"])
    # A failed login is nobody's action; the user it claimed to be is noted as a claim.
    claimed = {"sg1.det.": "det", "sg1.det.w": "det", "sg1.nobody": "nobody"}
    expected = next((u for p, u in claimed.items() if token.startswith(p)), None)
    assert record.details.get("claimed_user") == expected


def test_revoked_credentials(http: TestClient, guard: Guard, stack: Stack) -> None:
    Admin(stack.sg.access, stack.sg.audit, "ops").set_user_enabled("det", False)
    guard.refused(lambda: http.post("/search", json=VALID, headers=stack.auth("det")), 403,
                  "user_disabled", actor="det")


def test_rotated_away_token(http: TestClient, guard: Guard, stack: Stack) -> None:
    assert http.post("/search", json=VALID, headers=stack.auth("det")).status_code == 200
    Admin(stack.sg.access, stack.sg.audit, "ops").rotate_token("det")
    record = guard.refused(lambda: http.post("/search", json=VALID, headers=stack.auth("det")),
                           401, "invalid_token")
    assert record.details["claimed_user"] == "det"


def test_another_agencys_token(http: TestClient, guard: Guard, stack: Stack,
                               alert_id: str) -> None:
    # Aurora's token used as if for Denver.
    headers = {**stack.auth("aur"), "X-ALPR-Agency": "denver-co-pd"}
    record = guard.refused(lambda: http.post("/search", json=VALID, headers=headers), 403,
                           "agency_mismatch", actor="aur")
    assert record.agency == MOU_ID
    # Aurora's token on Denver's alert verification.
    guard.refused(lambda: http.post(f"/alerts/{alert_id}/verification", json=VERIFY,
                                    headers=stack.auth("aur")), 403, "missing_role",
                  actor="aur")
    # A Denver id spliced with Aurora's secret is no credential at all.
    spliced = {"Authorization": "Bearer sg1.disp." + stack.tokens["aur"].rsplit(".", 1)[1]}
    guard.refused(lambda: http.post(f"/alerts/{alert_id}/verification", json=VERIFY,
                                    headers=spliced), 401, "invalid_token")
    assert stack.sg.alerts.verification(alert_id) is None


def test_agency_cannot_be_claimed_in_the_body(http: TestClient, guard: Guard,
                                              stack: Stack) -> None:
    body = {**VALID, "agency": "denver-co-pd"}
    record = guard.refused(lambda: http.post("/search", json=body, headers=stack.auth("aur")),
                           422, "invalid_request", actor="aur")
    assert record.agency == MOU_ID


# --- injection in plate patterns -------------------------------------------------------


@pytest.mark.parametrize("pattern", [
    "' OR 1=1 --", "ABC123' --", "ABC%", "ABC_12", "ABC.*", "A[BC]123", "ABC\\*", "(ABC)",
    "ABC|XYZ", "ABC{1,3}", "^ABC$", "ABC\x00", "ABC\n*", "ABC123; DEL *", "ABC🙂",
    "*\\", "alpr:sg:*", "ABCDEFGHIJK",
])
def test_injection_in_plate_patterns(http: TestClient, guard: Guard, stack: Stack,
                                     pattern: str) -> None:
    record = guard.refused(
        lambda: http.post("/search", json={**VALID, "plate": pattern},
                          headers=stack.auth("det")), 422, "invalid_plate_pattern", actor="det")
    assert record.details["query"]["plate"] == pattern.strip()


@pytest.mark.parametrize("cameras", [["cam*"], ["cam-1", "../x"], ["a" * 65], ["c"] * 51])
def test_injection_in_camera_ids(http: TestClient, guard: Guard, stack: Stack,
                                 cameras: list[str]) -> None:
    guard.refused(lambda: http.post("/search", json={**VALID, "cameras": cameras},
                                    headers=stack.auth("det")), 422, "invalid_request",
                  actor="det")


def test_alert_id_injection(http: TestClient, guard: Guard, stack: Stack) -> None:
    for bad in ["*", "abc", "0" * 31 + "*"]:
        guard.refused(lambda b=bad: http.post(f"/alerts/{b}/verification", json=VERIFY,
                                              headers=stack.auth("disp")),
                      422, "invalid_alert_id", actor="disp")


# --- oversized and malformed requests --------------------------------------------------


def test_oversized_body(http: TestClient, guard: Guard, stack: Stack) -> None:
    huge = {**VALID, "reason": "x" * 20_000}
    record = guard.refused(lambda: http.post("/search", json=huge, headers=stack.auth("det")),
                           413, "request_too_large", actor="det")
    assert record.details["body_bytes"] > 16 * 1024


def test_oversized_chunked_body_without_length(http: TestClient, guard: Guard,
                                               stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"plate": "ABC123", "reason": "'
        for _ in range(40):
            yield b"y" * 1024
        yield b'"}'

    headers = {**stack.auth("det"), "Content-Type": "application/json"}
    guard.refused(lambda: http.post("/search", content=chunks(), headers=headers), 413,
                  "request_too_large", actor="det")


def test_oversized_body_from_a_stranger_is_refused_and_audited(http: TestClient,
                                                               guard: Guard) -> None:
    record = guard.refused(lambda: http.post("/search", content=b"{" + b" " * 40_000 + b"}",
                                             headers={"Content-Type": "application/json"}),
                           413, "request_too_large")
    assert record.details["authentication"] == "missing_token"


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b"null", b'"ABC123"', b'{"plate": 123}',
    b'{"plate": ["ABC123"], "case_number": "2025-1", "reason": "x", "offence": "robbery"}',
    b'{"plate": "ABC123", "limit": "all"}', b'{"plate": "ABC123", "limit": -1}',
    b"\xff\xfe\x00garbage",
])
def test_malformed_bodies(http: TestClient, guard: Guard, stack: Stack, body: bytes) -> None:
    headers = {**stack.auth("det"), "Content-Type": "application/json"}
    record = guard.refused(lambda: http.post("/search", content=body, headers=headers), 422,
                           "invalid_request", actor="det")
    assert record.details["errors"]


@pytest.mark.parametrize("body", [
    b'{"plate": "ABC\xff\xfe123", "case_number": "2025-004711"}',  # invalid UTF-8
    b'{"plate": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # JSON nested 5,000 deep
])
def test_bodies_that_do_not_parse_are_refused_and_audited(
        http: TestClient, guard: Guard, stack: Stack, body: bytes) -> None:
    """Fed: a body with invalid UTF-8 and one nested 5,000 deep, from a valid user, and
    the deep one from a stranger. Must survive: a 422 refusal and exactly one audit
    record for each (the stranger's a 401 naming the claim only), no data changed."""
    headers = {**stack.auth("det"), "Content-Type": "application/json"}
    record = guard.refused(lambda: http.post("/search", content=body, headers=headers), 422,
                           "unparsable_body", actor="det")
    assert record.details["body_bytes"] == len(body)
    guard.refused(lambda: http.post("/search", content=body,
                                    headers={"Content-Type": "application/json"}),
                  401, "missing_token")


def test_malformed_body_from_a_stranger_gets_401_not_422(http: TestClient,
                                                         guard: Guard) -> None:
    guard.refused(lambda: http.post("/search", content=b"{oops",
                                    headers={"Content-Type": "application/json"}),
                  401, "missing_token")


def test_unknown_fields_are_refused(http: TestClient, guard: Guard, stack: Stack) -> None:
    for extra in ({"all": True}, {"export": "csv"}, {"offset": 200}):
        guard.refused(lambda e=extra: http.post("/search", json={**VALID, **e},
                                                headers=stack.auth("det")),
                      422, "invalid_request", actor="det")


def test_malformed_verification(http: TestClient, guard: Guard, stack: Stack,
                                alert_id: str) -> None:
    bad = {**VERIFY, "check_result": "trust me"}
    guard.refused(lambda: http.post(f"/alerts/{alert_id}/verification", json=bad,
                                    headers=stack.auth("disp")), 422, "invalid_request",
                  actor="disp")
    assert stack.sg.alerts.verification(alert_id) is None


def test_transparency_page_needs_no_token_and_leaks_no_reads(http: TestClient) -> None:
    res = http.get("/transparency.html")
    assert res.status_code == 200 and "ABC123" not in res.text
    assert "ABC123" not in http.get("/transparency").text
