"""Issue 17, item 5: failed logins are throttled per claimed user and per client
address, before any token is checked, with bounded memory."""

from __future__ import annotations

from fastapi.testclient import TestClient
from safeguard_builders import Stack

from safeguards.api import create_app
from safeguards.throttle import FailedLogins

SEARCH = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
          "reason": "Armed robbery at a gas station, suspect vehicle seen leaving"}
WRONG = "x" * 43


def _post(http: TestClient, token: str) -> tuple[int, str]:
    res = http.post("/search", json=SEARCH, headers={"Authorization": f"Bearer {token}"})
    return res.status_code, res.json().get("error", "")


def test_five_wrong_secrets_lock_the_claimed_user_out(stack: Stack) -> None:
    """Fed: 5 wrong secrets claiming det, then det's real token, then aur's, from one
    address. Must survive: det's 6th attempt is 429 login_throttled even with the right
    token, audited as anonymous with the lock-out named; aur is not affected."""
    http = TestClient(create_app(stack.sg))
    assert [_post(http, f"sg1.det.{WRONG}")[0] for _ in range(5)] == [401] * 5
    assert _post(http, stack.tokens["det"]) == (429, "login_throttled")
    record = list(stack.sg.audit.records())[-1]
    assert (record.actor, record.decision) == ("anonymous", "refused:login_throttled")
    assert record.details["locked_out"] == "user" and record.details["claimed_user"] == "det"
    assert _post(http, stack.tokens["aur"])[0] == 200


def test_one_address_guessing_many_users_is_locked_out(stack: Stack) -> None:
    """Fed: 30 made-up users (one failure each) from 203.0.113.9, then det's valid
    token from there and from another address. Must survive: 429 from the guessing
    address, 200 from the other."""
    guesser = TestClient(create_app(stack.sg), client=("203.0.113.9", 4000))
    assert {_post(guesser, f"sg1.user{i}.{WRONG}")[0] for i in range(30)} == {401}
    assert _post(guesser, stack.tokens["det"]) == (429, "login_throttled")
    other = TestClient(create_app(stack.sg), client=("198.51.100.7", 4000))
    assert _post(other, stack.tokens["det"])[0] == 200


def test_the_throttle_keeps_bounded_memory_and_lifts_after_the_period() -> None:
    """Fed: 10,000 made-up user ids from one address into a throttle of at most 100
    counters, then the clock past the lock-out period. Must survive: at most 100
    counters kept, the address locked out meanwhile, and free again afterwards."""
    now = [0.0]
    logins = FailedLogins(per_client=30, per_user=5, lockout_s=600, max_keys=100,
                          clock=lambda: now[0])
    for i in range(10_000):
        logins.failed(FailedLogins.keys("203.0.113.9", f"user{i}"))
    assert len(logins) <= 100
    assert logins.blocked(FailedLogins.keys("203.0.113.9", "det")) == "client"
    assert logins.blocked(FailedLogins.keys("198.51.100.7", "det")) == ""
    now[0] = 601.0
    assert logins.blocked(FailedLogins.keys("203.0.113.9", "det")) == ""
