"""Rule 3: the guarded search over HTTP (and the CLI), against a real Redis."""

from __future__ import annotations

import fnmatch
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from safeguard_builders import MOU_ID, OWNER_ID, Stack, build_stack, make_read
from typer.testing import CliRunner

from kernel.contracts import PlateRead
from safeguards.api import create_app
from safeguards.audit import AuditRecord
from safeguards.patterns import PlatePattern
from safeguards.policy import DAY_S, load_policy
from safeguards.retention import MAX_PLATES_PER_BUCKET, ReadStore, now_ms
from sim.local_services import LocalRedis

VALID = {
    "plate": "ABC123",
    "case_number": "2025-004711",
    "offence": "robbery",
    "reason": "Armed robbery at a 7-Eleven, suspect vehicle seen leaving the parking lot",
}


@pytest.fixture
def stack(data_client: redis.Redis, client: redis.Redis) -> Stack:
    stack = build_stack(data_client, client)
    now = now_ms()
    stack.sg.reads.put_many([
        make_read("ABC123", camera="cam-1", at_ms=now - 3_600_000),
        make_read("ABC123", camera="cam-2", at_ms=now - 2 * DAY_S * 1000),
        make_read("ABD123", camera="cam-1", at_ms=now - 60_000),
        make_read("XBC123", camera="cam-3", at_ms=now - 60_000),
        make_read("ZZZ999", camera="cam-1", at_ms=now - 60_000),
    ])
    return stack


@pytest.fixture
def http(stack: Stack) -> TestClient:
    return TestClient(create_app(stack.sg))


def search(http: TestClient, stack: Stack, user: str = "det", **changes: Any) -> Any:
    body = {k: v for k, v in {**VALID, **changes}.items() if v is not None}
    return http.post("/search", json=body, headers=stack.auth(user))


def last_audit(stack: Stack) -> AuditRecord:
    return list(stack.sg.audit.records())[-1]


def plates(res: Any) -> list[str]:
    assert res.status_code == 200, res.json()
    return [hit["plate"] for hit in res.json()["results"]]


# --- what a search finds ---------------------------------------------------------------


def test_exact_plate(http: TestClient, stack: Stack) -> None:
    res = search(http, stack)
    assert plates(res) == ["ABC123", "ABC123"]  # newest first
    assert res.json()["cap"] == 200 and res.json()["truncated"] is False


@pytest.mark.parametrize(("pattern", "expected"), [
    ("AB?123", {"ABC123", "ABD123"}),
    ("*BC123", {"ABC123", "XBC123"}),
    ("AB?1*", {"ABC123", "ABD123"}),
    ("ABC*", {"ABC123"}),
    ("ab-c 123", {"ABC123"}),  # separators and case are normalised
    ("?BC12?", {"ABC123", "XBC123"}),
])
def test_partial_plate_with_wildcards(http: TestClient, stack: Stack, pattern: str,
                                      expected: set[str]) -> None:
    assert set(plates(search(http, stack, plate=pattern))) == expected


def test_camera_filter(http: TestClient, stack: Stack) -> None:
    assert plates(search(http, stack, plate="AB?123", cameras=["cam-2"])) == ["ABC123"]
    assert plates(search(http, stack, plate="AB?123", cameras=["cam-9"])) == []


def test_time_window(http: TestClient, stack: Stack) -> None:
    now = datetime.now(UTC)
    res = search(http, stack, start=(now - timedelta(days=1)).isoformat(),
                 end=now.isoformat())
    assert len(plates(res)) == 1
    res = search(http, stack, start=(now - timedelta(days=3)).isoformat(),
                 end=(now - timedelta(days=1)).isoformat())
    assert [h["camera_id"] for h in res.json()["results"]] == ["cam-2"]


def test_mou_agency_user_can_search(http: TestClient, stack: Stack) -> None:
    assert len(plates(search(http, stack, user="aur"))) == 2
    assert last_audit(stack).agency == MOU_ID


# --- required fields and the offence list ----------------------------------------------


@pytest.mark.parametrize("missing", ["case_number", "reason", "offence"])
def test_case_number_reason_and_offence_are_required(
    http: TestClient, stack: Stack, missing: str
) -> None:
    res = search(http, stack, **{missing: None})
    assert res.status_code == 422
    assert res.json()["error"] == "invalid_request" and missing in res.json()["detail"]
    assert last_audit(stack).decision == "refused:invalid_request"


@pytest.mark.parametrize(("field", "value", "code"), [
    ("case_number", "", "invalid_case_number"),
    ("case_number", "n/a", "invalid_case_number"),
    ("reason", "because", "reason_too_short"),
    ("offence", "shoplifting", "offence_not_permitted"),
])
def test_blank_or_unknown_values_are_refused(
    http: TestClient, stack: Stack, field: str, value: str, code: str
) -> None:
    res = search(http, stack, **{field: value})
    assert (res.status_code, res.json()["error"]) == (422, code)
    assert last_audit(stack).decision == f"refused:{code}"


@pytest.mark.parametrize("offence", [
    "immigration_enforcement", "reproductive_health_care", "traffic_enforcement",
    "harassment_intimidation", "protected_class", "personal_use", "Immigration",
])
def test_prohibited_offence_categories_are_refused(
    http: TestClient, stack: Stack, offence: str
) -> None:
    res = search(http, stack, offence=offence)
    assert (res.status_code, res.json()["error"]) == (403, "prohibited_purpose")
    assert last_audit(stack).decision == "refused:prohibited_purpose"


@pytest.mark.parametrize(("reason", "purpose"), [
    ("Locate vehicle for ICE removal operation", "immigration"),
    ("Subject may be undocumented, check status", "immigration"),
    ("Find where the driver went, suspected abortion appointment", "reproductive"),
    ("Vehicle with expired registration seen daily on Main St", "traffic"),
    ("Driver was speeding through the school zone repeatedly", "traffic"),
    ("Want to keep tabs on the organiser of the protest", "harassment"),
    ("Vehicle parked at the mosque, religion of owner unclear", "protected class"),
    ("Find out where my ex-girlfriend is living now", "personal use"),
    ("Just curious where my neighbor goes at night", "personal use"),
    ("Request from the F.B.I. field office, case pending", "federal"),
    ("Locate car for I\u200bCE detainer", "immigration"),  # zero-width space trick
    ("Locate car for ＩＣＥ detainer", "immigration"),  # full-width letters
])
def test_reason_text_is_screened_for_prohibited_purposes(
    http: TestClient, stack: Stack, reason: str, purpose: str
) -> None:
    res = search(http, stack, reason=reason)
    assert (res.status_code, res.json()["error"]) == (403, "prohibited_purpose")
    assert purpose in res.json()["detail"].lower()
    record = last_audit(stack)
    assert record.decision == "refused:prohibited_purpose" and record.details["reason"] == reason


@pytest.mark.parametrize("reason", [
    "Armed robbery, suspect fled through the parking lot in a silver sedan",
    "Burglary of personal property from a garage, vehicle seen nearby",
    "Carjacking victim's vehicle, suspect armed, traffic camera saw it northbound",
    "Hit and run, pedestrian seriously injured, partial plate from witness",
])
def test_legitimate_reasons_are_not_refused(http: TestClient, stack: Stack,
                                            reason: str) -> None:
    assert search(http, stack, reason=reason).status_code == 200


# --- no bulk export --------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["*", "?", "??????", "*1*", "A*", "AB", "A?*?B"])
def test_no_query_for_all_reads(http: TestClient, stack: Stack, pattern: str) -> None:
    res = search(http, stack, plate=pattern)
    assert (res.status_code, res.json()["error"]) == (422, "invalid_plate_pattern")


def test_results_are_capped_without_paging(http: TestClient, stack: Stack) -> None:
    now = now_ms()
    stack.sg.reads.put_many([make_read("MNY123", camera=f"cam-{i}", at_ms=now - i * 1000)
                             for i in range(250)])
    res = search(http, stack, plate="MNY123")
    assert res.status_code == 200
    assert (res.json()["count"], res.json()["truncated"]) == (200, True)
    assert last_audit(stack).details["result_count"] == 200
    res = search(http, stack, plate="MNY123", limit=1000)
    assert (res.status_code, res.json()["error"]) == (422, "limit_above_cap")
    # No paging parameter exists.
    assert search(http, stack, plate="MNY123", offset=200).status_code == 422


def test_slicing_the_window_cannot_take_more_than_the_daily_case_cap(
        http: TestClient, stack: Stack) -> None:
    """Fed: 250 reads of MNY123 over 250 minutes, fetched as two windows of 125 (each
    under the per-search cap of 200) for one case, then again for a new case, and a
    repeat of the first window. Must survive: the case gets 200 reads in total, the cut
    search says how many it withheld and an audit alert names the case cap; once the
    cap is reached a search with nothing new to release is refused (429, audited); a
    repeat returns what was already released."""
    now = now_ms()
    stack.sg.reads.put_many([make_read("MNY123", camera=f"cam-{i}", at_ms=now - i * 60_000)
                             for i in range(250)])
    def window(first: int, last: int) -> dict[str, str]:
        iso = lambda i: datetime.fromtimestamp((now - i * 60_000) / 1000, UTC).isoformat()  # noqa: E731
        return {"start": iso(last), "end": iso(first)}

    first = search(http, stack, plate="MNY123", **window(0, 124))
    second = search(http, stack, plate="MNY123", **window(125, 249))
    assert (first.json()["count"], second.json()["count"]) == (125, 75)
    assert (second.json()["truncated"], second.json()["withheld_by_daily_cap"]) == (True, 50)
    records = list(stack.sg.audit.records())
    alert = next(r for r in records if r.action == "bulk_export_alert")
    assert alert.actor == "det" and alert.details["daily_caps_reached"] == ["case"]
    assert alert.details["case_number"] == VALID["case_number"] and alert.details["withheld"] == 50
    assert records[-1].details["withheld_by_daily_cap"] == 50
    # The first window again: all 125 were released to this case already.
    assert search(http, stack, plate="MNY123", **window(0, 124)).json()["count"] == 125
    # Nothing new can be released to this case today.
    res = search(http, stack, plate="MNY123", **window(200, 249))
    assert (res.status_code, res.json()["error"]) == (429, "daily_cap_reached")
    assert last_audit(stack).decision == "refused:daily_cap_reached"


def test_daily_user_and_agency_caps_hold_across_cases(data_client: redis.Redis,
                                                      client: redis.Redis) -> None:
    """Fed: a user cap of 30 and an agency cap of 40 a day, and 50 reads fetched under a
    new case number each time. Must survive: the user gets the same 30 distinct reads
    each time (already released to the user, so free) and never a 31st; a colleague of
    the same agency then gets only the agency's remaining 10 of 50 other reads."""
    policy = load_policy(max_reads_per_user_per_day=30, max_reads_per_agency_per_day=40)
    stack = build_stack(data_client, client, policy=policy)
    _, stack.tokens["det2"] = stack.sg.access.add_user("det2", OWNER_ID)
    http = TestClient(create_app(stack.sg))
    now = now_ms()
    stack.sg.reads.put_many([make_read(plate, camera=f"cam-{i}", at_ms=now - i * 1000)
                             for i in range(50) for plate in ("MNY123", "MNZ456")])
    taken = [{hit["read_id"] for hit in search(http, stack, plate="MNY123",
                                               case_number=f"2025-00{n}1").json()["results"]}
             for n in range(1, 4)]
    assert [len(t) for t in taken] == [30, 30, 30] and len(set().union(*taken)) == 30
    res = search(http, stack, "det2", plate="MNZ456", case_number="2025-0099")
    assert (res.json()["count"], res.json()["withheld_by_daily_cap"]) == (10, 40)
    alert = [r for r in stack.sg.audit.records() if r.action == "bulk_export_alert"][-1]
    assert alert.actor == "det2" and alert.details["daily_caps_reached"] == ["agency"]


def test_searches_per_hour_are_bounded(data_client: redis.Redis, client: redis.Redis) -> None:
    policy = load_policy(max_searches_per_user_per_hour=2)
    stack = build_stack(data_client, client, policy=policy)
    http = TestClient(create_app(stack.sg))
    assert [search(http, stack).status_code for _ in range(3)] == [200, 200, 429]
    assert last_audit(stack).decision == "refused:rate_limited"


# --- the time window -------------------------------------------------------------------


def test_window_must_be_within_retention(http: TestClient, stack: Stack) -> None:
    now = datetime.now(UTC)
    res = search(http, stack, start=(now - timedelta(days=31)).isoformat())
    assert (res.status_code, res.json()["error"]) == (422, "window_outside_retention")
    res = search(http, stack, start=now.isoformat(), end=(now - timedelta(days=1)).isoformat())
    assert (res.status_code, res.json()["error"]) == (422, "invalid_window")
    res = search(http, stack, end=(now + timedelta(days=1)).isoformat())
    assert (res.status_code, res.json()["error"]) == (422, "invalid_window")
    res = search(http, stack, start="2025-01-01T00:00:00")  # no time zone
    assert (res.status_code, res.json()["error"]) == (422, "invalid_request")


# --- every attempt is audited ----------------------------------------------------------


def test_allowed_search_is_audited_with_all_fields(http: TestClient, stack: Stack) -> None:
    before = now_ms()
    res = search(http, stack, plate="AB?123", cameras=["cam-1"])
    record = last_audit(stack)
    assert res.json()["audit_seq"] == record.seq
    assert (record.actor, record.agency, record.action, record.decision) == (
        "det", OWNER_ID, "search", "allowed")
    assert before <= record.ts <= now_ms()
    d = record.details
    assert d["query"]["plate"] == "AB?123" and d["query"]["cameras"] == ["cam-1"]
    assert (d["case_number"], d["reason"], d["offence"]) == (
        VALID["case_number"], VALID["reason"], VALID["offence"])
    assert d["result_count"] == 2 and d["channel"] == "http"


def test_refused_search_is_audited_with_all_fields(http: TestClient, stack: Stack) -> None:
    res = search(http, stack, user="aur", reason="Find where my ex-wife is staying")
    record = last_audit(stack)
    assert res.json()["audit_seq"] == record.seq
    assert (record.actor, record.agency, record.decision) == (
        "aur", MOU_ID, "refused:prohibited_purpose")
    assert record.details["reason"] == "Find where my ex-wife is staying"
    assert record.details["case_number"] == VALID["case_number"]
    assert "result_count" not in record.details  # nothing was searched


def test_search_refused_when_audit_cannot_record(http: TestClient, stack: Stack,
                                                 client: redis.Redis) -> None:
    client.delete(stack.sg.audit.head_key)  # a broken audit trail refuses to append
    res = search(http, stack)
    assert (res.status_code, res.json()["error"]) == (503, "audit_unavailable")
    assert "results" not in res.json()


# --- CLI and OpenAPI -------------------------------------------------------------------


def test_cli_search_is_the_same_audited_search(data_server: LocalRedis, stack: Stack,
                                               server: LocalRedis,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from alpr.cli import app

    monkeypatch.setenv("ALPR_SG_REDIS_URL", data_server.url)
    monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    runner = CliRunner()
    args = ["search", "--plate", "AB?123", "--case", VALID["case_number"], "--reason",
            VALID["reason"], "--offence", "robbery", "--token-file", "-"]
    result = runner.invoke(app, args, input=stack.tokens["det"])
    assert result.exit_code == 0, result.output
    assert "3 result(s)" in result.output
    record = last_audit(stack)
    assert (record.decision, record.details["channel"]) == ("allowed", "cli")
    result = runner.invoke(app, [*args[:-3], "immigration_enforcement", "--token-file",
                                 "-"], input=stack.tokens["det"])
    assert result.exit_code == 1
    assert last_audit(stack).decision == "refused:prohibited_purpose"


def test_cli_refusals_are_audited_and_clear(data_server: LocalRedis, stack: Stack,
                                            server: LocalRedis,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from alpr.cli import app

    for name in ("REDIS_URL", "HOTLIST_REDIS_URL"):
        monkeypatch.setenv(f"ALPR_SG_{name}", data_server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    runner = CliRunner()
    base = ["search", "--plate", "ABC123", "--case", VALID["case_number"], "--reason",
            VALID["reason"], "--offence", "robbery"]
    stdin = ["--token-file", "-"]
    cases = [
        ([*base, *stdin, "--camera", "cam*"], stack.tokens["det"], "invalid_request",
         "det"),  # malformed: refused before the search, still audited
        ([*base, *stdin, "--reason", "x" * 1001], stack.tokens["det"], "invalid_request",
         "det"),
        ([*base, *stdin], "sg1.det.not-the-secret", "invalid_token", "anonymous"),
        ([*base[:-2], "--offence", "traffic_enforcement", *stdin], stack.tokens["aur"],
         "prohibited_purpose", "aur"),
    ]
    for args, token, code, actor in cases:
        before = stack.sg.audit.head().seq
        result = runner.invoke(app, args, input=token)
        assert result.exit_code == 1, result.output
        assert f"refused ({code})" in result.output and "Traceback" not in result.output
        (record,) = list(stack.sg.audit.records())[before:]
        assert (record.decision, record.actor, record.details["channel"]) == (
            f"refused:{code}", actor, "cli")
        assert record.details["query"]["plate"] == "ABC123"
        assert record.details["case_number"] == VALID["case_number"]
    result = runner.invoke(app, cases[0][0], input=cases[0][1])
    assert "cameras.0: String should match pattern" in result.output


def test_openapi_spec_documents_the_endpoints(http: TestClient) -> None:
    spec = http.get("/openapi.json").json()
    assert {"/search", "/alerts/{alert_id}/verification", "/transparency",
            "/transparency.html", "/healthz"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    body = spec["components"]["schemas"]["SearchRequest"]
    assert body["additionalProperties"] is False
    assert {"plate", "case_number", "reason", "offence"} <= set(body["required"])


# --- an exact-plate search is a few round trips, not one per bucket ---------------------


class CountingConnection(redis.Connection):
    """A real connection that counts its writes to the socket: one per command sent
    alone, one per pipeline (redis-py sends a pipeline in one send_packed_command)."""

    writes = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        super().send_packed_command(command, check_health)


def test_exact_plate_search_is_a_few_round_trips_with_the_same_results(
    client: redis.Redis, server: LocalRedis
) -> None:
    now = now_ms()
    hour, day = 3_600_000, DAY_S * 1000
    rng = random.Random(7)
    writer = ReadStore(client, clock=lambda: now)
    reads = []
    for i in range(300):  # one plate, read all over the 720 hourly buckets of retention
        at = now - rng.randrange(0, 30 * day - 2 * hour)
        reads.append(make_read("PLT123", camera=f"cam-{i % 5}", at_ms=at))
        reads.append(make_read("PLT124", camera="cam-1", at_ms=at))  # same buckets
        reads.append(make_read("XLT123", camera=f"cam-{i % 3}", at_ms=at + 1))
    tie = now - 5 * hour  # equal capture times: the order must not depend on batching
    reads += [make_read("PLT123", camera=f"cam-{c}", at_ms=tie) for c in range(4)]
    reads.append(make_read("PLT123", camera="cam-1", at_ms=now + day))  # clamped to now
    reads.append(make_read("PLT123", camera="cam-1", at_ms=now - 31 * day))  # not stored
    writer.put_many(reads)

    # Independently of the indexes: every stored read, filtered and ordered by hand.
    stored = [PlateRead.model_validate_json(raw) for raw in client.mget(
        list(client.scan_iter(match="alpr:sg:read:*", count=1000)))]

    def expected(limit: int, cameras: tuple[str, ...] = (), lo: int = 0, hi: int = now,
                 plates: tuple[str, ...] = ("PLT123",)) -> tuple[list[PlateRead], bool]:
        hits = sorted(((min(r.first_seen, now), r.read_id), r) for r in stored
                      if r.plate in plates and lo <= min(r.first_seen, now) <= hi
                      and (not cameras or r.camera_id in cameras))
        hits.reverse()
        return [r for _, r in hits[:limit]], len(hits) > limit

    pool = redis.ConnectionPool(host="127.0.0.1", port=server.port,
                                connection_class=CountingConnection)
    counted = redis.Redis(connection_pool=pool)
    counted.ping()  # connect (and its handshake) before counting
    store = ReadStore(counted, clock=lambda: now)
    cases: list[tuple[int, tuple[str, ...], int, int]] = [
        (1000, (), 0, now), (50, (), 0, now), (1000, ("cam-2", "cam-4"), 0, now),
        (10, ("cam-3",), 0, now), (1000, (), now - 10 * day, now - 2 * day),
    ]
    for limit, cameras, lo, hi in cases:
        want, truncated = expected(limit, cameras, lo, hi)
        CountingConnection.writes = 0
        found = store.find(PlatePattern.parse("PLT123"), cameras=cameras, limit=limit,
                           start_ms=lo or None, end_ms=hi)
        writes = CountingConnection.writes
        assert (found.reads, found.truncated) == (want, truncated), (limit, cameras)
        # Index lookups (+ camera check) in one pipeline each, then one MGET.
        assert writes <= 3, (limit, cameras, writes)
    assert len(expected(1000)[0]) == 305  # all of them, the clamped one included
    # Wildcards go through the same camera filter.
    found = store.find(PlatePattern.parse("PLT12?"), cameras=("cam-1", "cam-3"), limit=1000)
    assert (found.reads, found.truncated) == expected(
        1000, ("cam-1", "cam-3"), plates=("PLT123", "PLT124"))
    counted.close()
    pool.disconnect()


def test_wildcard_search_is_a_few_round_trips_with_the_same_results(
    client: redis.Redis, server: LocalRedis
) -> None:
    now = now_ms()
    hour, day = 3_600_000, DAY_S * 1000
    rng = random.Random(11)
    writer = ReadStore(client, clock=lambda: now)
    plates = ["PLT120", "PLT123", "PLT129", "PLT1A3", "PLT12", "PLT1234", "PLX123",
              "QLT123", "ALT123"]
    reads = [make_read(rng.choice(plates), camera=f"cam-{i % 5}",
                       at_ms=now - rng.randrange(0, 30 * day - 2 * hour))
             for i in range(900)]  # all over the 720 hourly buckets of retention
    tie = now - 5 * hour
    reads += [make_read(p, camera=f"cam-{c}", at_ms=tie) for c in range(3)
              for p in ("PLT120", "PLT129")]
    reads.append(make_read("PLT123", camera="cam-1", at_ms=now + day))  # clamped to now
    reads.append(make_read("PLT123", camera="cam-1", at_ms=now - 31 * day))  # not stored
    writer.put_many(reads)
    stored = [PlateRead.model_validate_json(raw) for raw in client.mget(
        list(client.scan_iter(match="alpr:sg:read:*", count=1000)))]
    assert len(stored) == len(reads) - 1

    def expected(pattern: str, limit: int, cameras: tuple[str, ...] = (), lo: int = 0,
                 hi: int = now) -> tuple[list[PlateRead], bool, int, int]:
        """(reads, truncated, buckets scanned, plates matched) from the stored reads by
        hand: fnmatch, not PlatePattern; the walk stops after the bucket where the
        matches first exceed `limit`, as a bucket-by-bucket search does."""
        lo = max(lo, now - 30 * day + 1)
        ts = {r.read_id: min(r.first_seen, now) for r in stored}
        matching = [r for r in stored if fnmatch.fnmatchcase(r.plate, pattern)]
        hits = sorted(((ts[r.read_id], r.read_id), r) for r in matching
                      if lo <= ts[r.read_id] <= hi and (not cameras or r.camera_id in cameras))
        hits.reverse()
        scanned = matched = seen = 0
        for b in range(hi // hour, lo // hour - 1, -1):
            scanned += 1
            matched += len({r.plate for r in matching if ts[r.read_id] // hour == b})
            seen += sum(1 for (t, _), _ in hits if t // hour == b)
            if seen > limit:
                break
        return [r for _, r in hits[:limit]], len(hits) > limit, scanned, matched

    pool = redis.ConnectionPool(host="127.0.0.1", port=server.port,
                                connection_class=CountingConnection)
    counted = redis.Redis(connection_pool=pool)
    counted.ping()
    store = ReadStore(counted, clock=lambda: now)
    cases: list[tuple[str, int, tuple[str, ...], int, int]] = [
        ("PLT12?", 1000, (), 0, now),  # a known prefix, every bucket
        ("PLT1*", 1000, ("cam-2", "cam-4"), 0, now),
        ("PLT1*", 10, (), 0, now),  # cut within the first chunk of buckets
        ("PLT12*", 150, ("cam-1",), 0, now),  # cut in a later chunk
        ("PL?1*", 1000, (), now - 10 * day, now - 2 * day),
        ("?LT123", 1000, (), 0, now),  # no literal prefix: ZSCAN, batched the same way
        ("?LT12*", 40, ("cam-0", "cam-3"), 0, now),
        ("PLT9*", 1000, (), 0, now),  # nothing matches
    ]
    for pattern, limit, cameras, lo, hi in cases:
        want, truncated, scanned, matched = expected(pattern, limit, cameras, lo, hi)
        CountingConnection.writes = 0
        found = store.find(PlatePattern.parse(pattern), cameras=cameras, limit=limit,
                           start_ms=lo or None, end_ms=hi)
        writes = CountingConnection.writes
        case = (pattern, limit, cameras)
        assert (found.reads, found.truncated) == (want, truncated), case
        assert (found.buckets_scanned, found.plates_matched) == (scanned, matched), case
        # 30 days: plate lists in 3 chunks of buckets, each chunk's lookups (and camera
        # check) in one pipeline, then one MGET. Bucket by bucket it was ~1,440.
        assert writes <= 10, (case, writes)
    assert expected("PLT12?", 1000)[0] and expected("PLT1*", 10)[2] < 24
    assert expected("PLT12*", 150, ("cam-1",))[2] > 24 + 192
    counted.close()
    pool.disconnect()


def test_a_bucket_with_too_many_matching_plates_is_cut_and_reported(
    client: redis.Redis,
) -> None:
    # MAX_PLATES_PER_BUCKET still applies per bucket when buckets are listed together.
    now = now_ms()
    store = ReadStore(client, clock=lambda: now)
    at = now - 3 * 3_600_000
    store.put_many([make_read(f"CUTX{i:04d}", at_ms=at) for i in range(MAX_PLATES_PER_BUCKET + 5)]
                   + [make_read("CUTX9999", at_ms=now - 3_600_000)])
    for pattern in ("CUTX*", "?UTX*"):  # a lexical range, then ZSCAN
        found = store.find(PlatePattern.parse(pattern), limit=5000)
        assert found.truncated and found.plates_matched == MAX_PLATES_PER_BUCKET + 1, pattern
        assert len(found.reads) == MAX_PLATES_PER_BUCKET + 1, pattern


def test_cli_token_never_on_the_command_line(data_server: LocalRedis, stack: Stack,
                                             server: LocalRedis, tmp_path: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Fed: `alpr search` with the token as --token (argv, seen by `ps`), then from a
    file, from stdin and from ALPR_TOKEN. Must survive: the argv one is refused with
    exit 2 before any search (no audit record); the other three search (exit 0)."""
    from alpr.cli import app

    monkeypatch.setenv("ALPR_SG_REDIS_URL", data_server.url)
    monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    monkeypatch.delenv("ALPR_TOKEN", raising=False)
    args = ["search", "--plate", "ABC123", "--case", VALID["case_number"], "--reason",
            VALID["reason"], "--offence", "robbery"]
    runner = CliRunner()
    before = stack.sg.audit.head().seq
    result = runner.invoke(app, [*args, "--token", stack.tokens["det"]])
    assert result.exit_code == 2 and "--token-file" in result.output
    assert stack.sg.audit.head().seq == before
    token_file = tmp_path / "token"
    token_file.write_text(stack.tokens["det"] + "\n")
    assert runner.invoke(app, [*args, "--token-file", str(token_file)]).exit_code == 0
    assert runner.invoke(app, [*args, "--token-file", "-"],
                         input=stack.tokens["det"]).exit_code == 0
    assert runner.invoke(app, args, env={"ALPR_TOKEN": stack.tokens["det"]}).exit_code == 0
