"""Issue 17, items 5 and 6 (parts) and low items: anonymous refusals do not move the
public statistics; the audit Redis's durability is checked while the API runs; the
client address comes from X-Forwarded-For only through a configured proxy."""

from __future__ import annotations

import time

import redis
from fastapi.testclient import TestClient
from safeguard_builders import Stack, build_stack

from safeguards.api import create_app

SEARCH = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
          "reason": "Armed robbery at a gas station, suspect vehicle seen leaving"}


def test_anonymous_refusals_are_audited_but_not_counted(http: TestClient,
                                                        stack: Stack) -> None:
    """Fed: 20 searches with no token or a made-up one, then one refused search by a
    real user. Must survive: all 21 on the audit trail, and "searches refused" on the
    public page moved by 1 only."""
    before = http.get("/transparency").json()["searches_refused_last_30_days"]
    seq = stack.sg.audit.head().seq
    for i in range(20):
        headers = {"Authorization": f"Bearer sg1.nobody{i}.{'x' * 43}"} if i % 2 else {}
        assert http.post("/search", json=SEARCH, headers=headers).status_code == 401
    res = http.post("/search", json={**SEARCH, "offence": "jaywalking"},
                    headers=stack.auth("det"))
    assert res.status_code == 422
    assert stack.sg.audit.head().seq == seq + 21
    after = http.get("/transparency").json()["searches_refused_last_30_days"]
    assert after == before + 1


def test_audit_durability_turned_off_while_serving_is_caught(
        data_client: redis.Redis, client: redis.Redis) -> None:
    """Fed: a running API (durability required), then `CONFIG SET appendfsync no` on
    its audit Redis. Must survive: /healthz says 503 not ok, and a search is refused
    503 audit_unavailable instead of being served on a trail that may not survive."""
    stack = build_stack(data_client, client)
    stack.sg.gate.durability_check_s = 0.001
    http = TestClient(create_app(stack.sg))
    assert http.get("/healthz").status_code == 200
    assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
    client.config_set("appendfsync", "no")
    try:
        health = http.get("/healthz")
        assert (health.status_code, health.json()["ok"]) == (503, False)
        res = http.post("/search", json=SEARCH, headers=stack.auth("det"))
        assert (res.status_code, res.json()["error"]) == (503, "audit_unavailable")
    finally:
        client.config_set("appendfsync", "always")


def test_healthz_does_not_show_the_redis_address(data_client: redis.Redis,
                                                 client: redis.Redis) -> None:
    """Fed: /healthz with the data Redis connection pointed at a closed port. Must
    survive: 503, and no host:port in the answer."""
    stack = build_stack(data_client, client)
    port = data_client.connection_pool.connection_kwargs["port"]
    stack.sg.data = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    res = TestClient(create_app(stack.sg)).get("/healthz")
    assert res.status_code == 503
    assert "127.0.0.1" not in res.text and ":1" not in res.text and str(port) not in res.text


def test_a_token_past_its_expiry_is_refused(stack: Stack, data_client: redis.Redis) -> None:
    """Fed: det's token checked by a registry whose clock reads 91 days later (tokens
    last 90). Must survive: 401 token_expired; the same token is fine today."""
    import pytest

    from safeguards.access import AccessDeniedError, AccessRegistry
    from safeguards.retention import now_ms

    later = AccessRegistry(data_client, stack.sg.access.policy, signer=stack.sg.access.signer,
                           clock=lambda: now_ms() + 91 * 86_400_000)
    assert stack.sg.access.authenticate(stack.tokens["det"]).user_id == "det"
    with pytest.raises(AccessDeniedError) as exc:
        later.authenticate(stack.tokens["det"])
    assert (exc.value.code, exc.value.status) == ("token_expired", 401)


def test_x_forwarded_for_is_trusted_only_from_configured_proxies(stack: Stack) -> None:
    """Fed: a search from 127.0.0.1 claiming X-Forwarded-For 203.0.113.5, to an API with
    no trusted proxies, then to one trusting 10.0.0.2 only, then from 10.0.0.2 itself.
    Must survive: the audit names 127.0.0.1 twice (a local process cannot pick the
    client it is audited as) and 203.0.113.5 only when the configured proxy says it."""
    spoofed = {**stack.auth("det"), "X-Forwarded-For": "203.0.113.5"}
    for proxies, peer, audited in (("", "127.0.0.1", "127.0.0.1"),
                                   ("10.0.0.2", "127.0.0.1", "127.0.0.1"),
                                   ("10.0.0.2", "10.0.0.2", "203.0.113.5")):
        http = TestClient(create_app(stack.sg, trusted_proxies=proxies), client=(peer, 5000))
        assert http.post("/search", json=SEARCH, headers=spoofed).status_code == 200
        assert list(stack.sg.audit.records())[-1].details["client"] == audited


def test_the_served_api_ignores_x_forwarded_for_from_a_local_process(stack: Stack) -> None:
    """Fed: the API run by uvicorn as `alpr serve` configures it (no trusted proxies),
    and a search from 127.0.0.1 claiming X-Forwarded-For 203.0.113.5. Must survive: the
    audit names 127.0.0.1 (uvicorn's own default trusts a local peer's header)."""
    import threading

    import httpx
    import uvicorn

    from safeguards.api import server_config
    from safeguards.settings import SafeguardSettings
    from sim.local_services import free_port

    port = free_port()
    settings = SafeguardSettings(host="127.0.0.1", port=port)
    server = uvicorn.Server(server_config(create_app(stack.sg), settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        res = httpx.post(f"http://127.0.0.1:{port}/search", json=SEARCH, timeout=10,
                         headers={**stack.auth("det"), "X-Forwarded-For": "203.0.113.5"})
        assert res.status_code == 200, res.text
        assert list(stack.sg.audit.records())[-1].details["client"] == "127.0.0.1"
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_unknown_user_costs_the_same_scrypt_as_a_wrong_secret(
        stack: Stack, data_client: redis.Redis) -> None:
    """Fed: at the production scrypt cost, 5 logins with a wrong secret for a real user
    and 5 claiming a user id that does not exist. Must survive: both refused alike
    (401 invalid_token), and the unknown user takes at least half as long as the wrong
    secret (without the dummy hash it answered ~20x faster: user ids could be listed)."""
    import statistics

    import pytest

    from safeguards.access import AccessDeniedError, AccessRegistry

    registry = AccessRegistry(data_client, stack.sg.access.policy,
                              signer=stack.sg.access.signer)  # the production cost
    registry.add_user("slow", "denver-co-pd")

    def timed(token: str) -> float:
        start = time.perf_counter()
        with pytest.raises(AccessDeniedError) as exc:
            registry.authenticate(token)
        assert (exc.value.code, exc.value.status) == ("invalid_token", 401)
        return time.perf_counter() - start

    wrong = statistics.median(timed(f"sg1.slow.{'w' * 43}") for _ in range(5))
    unknown = statistics.median(timed(f"sg1.nobody{i}.{'w' * 43}") for i in range(5))
    assert unknown >= 0.5 * wrong, (unknown, wrong)
