"""Rule 5: POST /alerts/{id}/verification records who verified or dismissed an alert and
what NCIC/CCIC said; audited and counted."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
from deadlines import finish_within
from fastapi.testclient import TestClient
from redis.commands.core import Script
from safeguard_builders import OWNER_ID, Stack, build_stack, make_alert, make_entry, make_read

from kernel.contracts import Alert
from safeguards.api import create_app
from safeguards.audit import AuditLog
from safeguards.settings import SafeguardSettings
from safeguards.wiring import Safeguards
from sim.local_services import LocalRedis, free_port

T = TypeVar("T")

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


@pytest.mark.parametrize("note", [
    "Driver DOB 04/12/1985, plate STO123 confirmed with NCIC",
    "stopped ABC-123 and STO 123; driver born Jan 5, 1980",
    "date of birth 1985-04-12 on the licence, vehicle 7ABC123",
])
def test_verification_notes_reach_the_audit_without_plates_or_birth_dates(
        http: TestClient, stack: Stack, alert: Alert, note: str) -> None:
    """Fed: verification notes with plates (plain, dashed, spaced, with a leading digit)
    and dates of birth (numeric, with a month name, ISO). Must survive: the verification
    keeps the note as written (30 days); neither audit record (kept indefinitely) holds a
    plate or a date of birth, and the rest of the note is still there."""
    res = post(http, stack, alert.alert_id, {**VERIFIED, "note": note})
    assert res.status_code == 200, res.json()
    assert stack.sg.alerts.verification(alert.alert_id).note == note
    for record in list(stack.sg.audit.records())[-2:]:
        audited = record.details["note"]
        for secret in ("STO123", "STO 123", "ABC-123", "7ABC123", "1985", "1980", "04/12"):
            assert secret not in audited, (secret, audited)
        assert "[plate]" in audited and "[dob]" in audited


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


def test_cli_lists_and_disables_users(data_server: LocalRedis, stack: Stack, server: LocalRedis,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from alpr.cli import app

    monkeypatch.setenv("ALPR_SG_REDIS_URL", data_server.url)
    monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    runner = CliRunner()
    result = runner.invoke(app, ["user", "add", "newdisp", "--agency", OWNER_ID, "--role",
                                 "verify"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert stack.sg.access.authenticate(token).user_id == "newdisp"
    assert runner.invoke(app, ["user", "disable", "newdisp"]).exit_code == 0
    assert stack.sg.access.user("newdisp").enabled is False
    result = runner.invoke(app, ["agency", "add", "FBI Denver", "--mou-reference", "X"])
    assert result.exit_code == 1 and "federal" in result.output
    result = runner.invoke(app, ["agency", "list"])
    assert "aurora-co-pd" in result.output


# --- the outcome record times out on a hung audit Redis --------------------------------

HANG_TIMEOUT_S = 0.5  # ALPR_REDIS_SOCKET_TIMEOUT_S of the API's clients here
HANG_DEADLINE_S = 4.0  # the API must answer within this, hung Redis or not


def _in_time(call: Callable[[], T]) -> T:
    """call() in a thread; fails if it has not ended after HANG_DEADLINE_S."""
    return finish_within(HANG_DEADLINE_S, call)


def _api_with_an_alert(data_url: str, audit_url: str) -> tuple[Stack, TestClient, Alert]:
    """The safeguards API on its own data and audit Redis, holding one stored alert."""
    sg = Safeguards.build(SafeguardSettings(redis_url=data_url, audit_redis_url=audit_url,
                                            hotlist_redis_url=data_url))
    stack = build_stack(sg.data, sg.audit.client)
    alert = make_alert(make_read("STO123"), make_entry("STO123", "NCIC-778"))
    stack.sg.alerts.put(alert)
    return stack, TestClient(create_app(stack.sg)), alert


def _is_the_verified_record(args: Any) -> bool:
    """Whether a script call's arguments carry a `verified` audit record."""
    return any(b'"decision":"verified"' in (a if isinstance(a, bytes) else str(a).encode())
               for a in args or ())


@pytest.mark.parametrize("thaw", ["as_it_is_undone", "after_the_answer"])
def test_a_verification_whose_outcome_record_timed_out_is_undone_and_never_counted(
    thaw: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: a dispatcher's valid `verified` of a stored alert through the API, with the
    # audit Redis (its own durable server) frozen (SIGSTOP) just as the `verified`
    # outcome record is sent: after the `requested` record and the stored verification.
    # Thawed (SIGCONT) after the client's 0.5 s timeout, either as the API undoes the
    # verification or only after it has answered. Must hold: 503 `audit_unavailable`
    # in time; the verification is not stored; the trail read after the thaw (which
    # still runs whatever the frozen server was sent) never says `verified` for this
    # request unless an `undone` record naming the request follows it, and when thawed
    # in time for it that `undone` record is there; the chain verifies; the published
    # statistics count no verification. (Before, the timed-out `verified` record landed
    # on the thaw, after the undo: the trail said verified and the page counted 1.)
    monkeypatch.setenv("ALPR_REDIS_SOCKET_TIMEOUT_S", str(HANG_TIMEOUT_S))
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit, \
            contextlib.ExitStack() as frozen:
        stack, http, alert = _api_with_an_alert(data.url, audit.url)
        store = stack.sg.alerts
        call = Script.__call__

        def freeze_then_append(self: Script, keys: Any = None, args: Any = None,
                               client: Any = None) -> Any:
            if _is_the_verified_record(args):
                frozen.enter_context(audit.paused())
            return call(self, keys, args, client)

        forget = store.forget_verification

        def thaw_then_forget(alert_id: str) -> None:
            frozen.close()
            forget(alert_id)

        monkeypatch.setattr(Script, "__call__", freeze_then_append)
        if thaw == "as_it_is_undone":
            store.forget_verification = thaw_then_forget  # type: ignore[method-assign]
        before = stack.sg.audit.head().seq
        try:
            res = _in_time(lambda: post(http, stack, alert.alert_id, VERIFIED))
        finally:
            frozen.close()  # thaw (if not already)
            monkeypatch.setattr(Script, "__call__", call)
        assert (res.status_code, res.json()["error"]) == (503, "audit_unavailable")
        time.sleep(1.0)  # the thawed server runs what it was sent before it froze
        new = list(AuditLog(audit.client()).records())[before:]
        request = new[0]
        assert (request.actor, request.decision, request.details["alert_id"]) == (
            "disp", "requested", alert.alert_id)
        about = [r for r in new[1:] if r.details.get("request_seq") == request.seq]
        decisions = [r.decision for r in about]
        if "verified" in decisions:
            assert decisions[decisions.index("verified") + 1:] == ["undone"], decisions
        if thaw == "as_it_is_undone":
            assert decisions[-1:] == ["undone"], decisions
            assert about[-1].details["undid"] == "verified"
        assert store.verification(alert.alert_id) is None
        assert AuditLog(audit.client()).verify().ok
        report = stack.sg.transparency.report()
        assert (report.alerts_verified_last_30_days,
                report.alerts_dismissed_last_30_days) == (0, 0)
        assert http.get("/transparency").json()["alerts_verified_last_30_days"] == 0
        print(f"trail for the request: {decisions}")


class ReplyDropper:
    """A TCP relay in front of a real Redis that, while `dropping` is set, swallows the
    server's replies: a request that arrived and ran, whose answer is lost on the way
    back (a dropped connection, a black-holed return path)."""

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.dropping = threading.Event()
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                down, _ = self._listener.accept()
                up = socket.create_connection(("127.0.0.1", self._upstream))
                threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
                threading.Thread(target=self._pump, args=(up, down, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                if not (replies and self.dropping.is_set()):
                    dst.sendall(chunk)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def test_a_verification_whose_outcome_record_landed_but_its_reply_was_lost_is_undone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: a dispatcher's valid `verified` of a stored alert through the API, its audit
    # Redis reached through a relay that drops the server's replies from just before
    # the `verified` outcome record is sent until the API undoes the verification (after
    # the client's 0.5 s timeout): the record runs and lands, the API never hears so.
    # Must hold: 503 `audit_unavailable`; the verification is not stored; the trail
    # reads requested -> verified -> undone (naming the request, after the record that
    # did land); the chain verifies; the published statistics count no verification.
    # (Before, the trail ended at `verified` and the page counted 1 for a verification
    # that had been undone.)
    monkeypatch.setenv("ALPR_REDIS_SOCKET_TIMEOUT_S", str(HANG_TIMEOUT_S))
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit:
        relay = ReplyDropper(audit.port)
        try:
            stack, http, alert = _api_with_an_alert(data.url, relay.url)
            store = stack.sg.alerts
            call = Script.__call__

            def drop_replies_then_append(self: Script, keys: Any = None, args: Any = None,
                                         client: Any = None) -> Any:
                if _is_the_verified_record(args):
                    relay.dropping.set()
                return call(self, keys, args, client)

            forget = store.forget_verification

            def answer_then_forget(alert_id: str) -> None:
                relay.dropping.clear()
                forget(alert_id)

            monkeypatch.setattr(Script, "__call__", drop_replies_then_append)
            store.forget_verification = answer_then_forget  # type: ignore[method-assign]
            before = stack.sg.audit.head().seq
            try:
                res = _in_time(lambda: post(http, stack, alert.alert_id, VERIFIED))
            finally:
                relay.dropping.clear()
                monkeypatch.setattr(Script, "__call__", call)
            assert (res.status_code, res.json()["error"]) == (503, "audit_unavailable")
            new = list(AuditLog(audit.client()).records())[before:]
            assert [r.decision for r in new] == ["requested", "verified", "undone"], new
            request, verified, undone = new
            assert verified.details["request_seq"] == undone.details["request_seq"] == (
                request.seq)
            assert undone.details["undid"] == "verified"
            assert (undone.actor, undone.action) == ("disp", "alert_verification")
            assert store.verification(alert.alert_id) is None
            assert AuditLog(audit.client()).verify().ok
            report = stack.sg.transparency.report()
            assert (report.alerts_verified_last_30_days,
                    report.alerts_dismissed_last_30_days) == (0, 0)
        finally:
            relay.close()
