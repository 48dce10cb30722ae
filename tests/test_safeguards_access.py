"""Rule 2: agencies (owner + MOU only, never federal) and users with their own tokens."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from policy_helpers import edit, site_policy
from safeguard_builders import MOU_ID, OWNER_ID, TEST_SIGNER, Stack, build_stack, signed_edit

from safeguards.access import (
    AccessDeniedError,
    AccessRegistry,
    AgencyKind,
    RegistryError,
    Role,
)
from safeguards.admin import Admin
from safeguards.api import create_app
from safeguards.audit import AuditLog, AuditRecord
from safeguards.policy import PolicyError, load_policy
from safeguards.policy_audit import AuditedPolicy
from safeguards.wiring import Safeguards
from sim.local_services import LocalRedis

# The portal's "External organizations with access", verbatim (stray spaces included).
PORTAL_LIST = (
    "Adams County CO SO, Arapahoe County CO SO, Arvada CO PD, Aurora CO PD, Avon CO PD, "
    "Basalt CO PD, Boulder CO PD, Boulder County CO SO, Broomfield CO PD, Castle Rock CO PD, "
    "Chaffee County CO SO, Cherry Hills Village CO PD, CO - Colorado Bureau of Investigation, "
    "CO - Colorado State Parks, CO - Fort Collins PD, CO - Keenesburg PD , Colorado Springs CO "
    "PD, Commerce City CO PD, Douglas County CO SO, Durango CO PD, Edgewater CO PD, El Paso CO "
    "SO, Elizabeth CO PD, Englewood CO PD, Firestone CO PD, Frederick CO PD, Garfield County CO"
    " SO, Georgetown CO PD, Golden CO PD, Grand County CO SO, Gunnison County CO SO, Hayden CO "
    "PD, Hotchkiss CO PD, Hudson CO PD, Jackson County CO SO, Jefferson County CO SO, Johnstown"
    " CO PD, Lafayette CO PD, Lakewood CO PD, Larimer County CO SO, Lincoln County CO SO, "
    "Lochbuie CO PD , Lone Tree CO PD, Louisville CO PD, Loveland CO PD, Mead CO PD, Moffat "
    "County SO CO, Montrose CO PD, Morrison CO PD, Mountain Village PD (CO), Northern Colorado "
    "Intelligence Unit CO, Northglenn CO PD, Parker CO PD, Prowers County SO (CO), Pueblo CO "
    "PD, Routt County CO SO, Salida CO PD, Silt CO PD, Summit County CO SO, Thornton CO PD, "
    "Town of Lyons CO, University of Colorado Anschutz Medical Campus CO PD, Vail CO PD, Weld "
    "County CO SO, Westminster CO PD, Windsor CO PD"
)

FEDERAL_NAMES = [
    "FBI Denver Field Office",
    "F.B.I. Denver",
    "ICE ERO Denver",
    "Homeland Security Investigations",
    "U.S. Marshals Service",
    "US Customs and Border Protection",
    "DEA Rocky Mountain Division",
    "ATF Denver Field Division",
    "Rocky Mountain Safe Streets Task Force",
    "Federal Bureau of Prisons",
    "United States Secret Service",
]


def admin(stack: Stack) -> Admin:
    return Admin(stack.sg.access, stack.sg.audit, "test-operator")


SEARCH = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
          "reason": "Armed robbery on Colfax, suspect vehicle seen leaving"}


def test_default_agencies_are_the_owner_and_the_portal_list(stack: Stack) -> None:
    expected = sorted(" ".join(n.split()) for n in PORTAL_LIST.split(", "))
    assert len(expected) == 66
    assert sorted(load_policy().mou_agencies) == expected
    agencies = stack.sg.access.agencies()
    assert sorted(a.name for a in agencies if a.kind == AgencyKind.MOU) == expected
    assert [a.name for a in agencies if a.kind == AgencyKind.OWNER] == ["Denver CO PD"]
    assert all(a.enabled and a.mou_reference for a in agencies)


@pytest.mark.parametrize("name", FEDERAL_NAMES)
def test_federal_agencies_are_refused(stack: Stack, name: str) -> None:
    policy = stack.sg.policy
    assert policy.federal_marker(name)
    with pytest.raises(RegistryError, match="federal"):
        admin(stack).add_agency(name, AgencyKind.MOU, "MOU-2025-99")
    with pytest.raises(PolicyError, match="federal"):
        load_policy(mou_agencies=[*policy.mou_agencies, name])


def test_no_default_agency_is_mistaken_for_federal() -> None:
    policy = load_policy()
    assert [n for n in policy.mou_agencies if policy.federal_marker(n)] == []


def test_federal_agency_written_straight_into_redis_is_still_refused(stack: Stack) -> None:
    # Somebody with the record key bypasses the registry: the check runs again on every
    # request (without the key the record is refused as unsigned).
    signed_edit(stack.sg.data, "agency", MOU_ID, name="FBI Safe Streets Task Force")
    with pytest.raises(AccessDeniedError) as exc:
        stack.sg.access.authenticate(stack.tokens["aur"])
    assert (exc.value.code, exc.value.status) == ("federal_agency", 403)


def test_federal_agent_on_a_denver_task_force_gets_no_account(stack: Stack) -> None:
    with pytest.raises(RegistryError, match="own agency"):
        admin(stack).add_user("agent1", OWNER_ID, employer="FBI Denver")
    # ... and a user whose employer is edited to a federal one afterwards is refused.
    signed_edit(stack.sg.data, "user", "det", employer="HSI Denver")
    with pytest.raises(AccessDeniedError) as exc:
        stack.sg.access.authenticate(stack.tokens["det"])
    assert exc.value.code == "employer_not_agency"


@pytest.mark.parametrize("employer", ["Fbi", "Secret Service",
                                      "Dept. of H\u043emeland Security", "Aurora CO PD"])
def test_a_users_employer_must_be_its_own_agency(stack: Stack, employer: str) -> None:
    """Fed: employers the federal deny-list misses ("Fbi", "Secret Service", a Cyrillic o
    in "H\u043emeland") and another MOU agency, for a Denver user. Must survive: each is
    refused when added (no user made) and, written into a signed record, on every request."""
    with pytest.raises(RegistryError, match="own agency"):
        admin(stack).add_user("tf1", OWNER_ID, employer=employer)
    assert stack.sg.access.user("tf1") is None
    signed_edit(stack.sg.data, "user", "det", employer=employer)
    with pytest.raises(AccessDeniedError) as exc:
        stack.sg.access.authenticate(stack.tokens["det"])
    assert (exc.value.code, exc.value.status) == ("employer_not_agency", 403)


def test_a_user_employed_by_its_own_agency_is_allowed(stack: Stack) -> None:
    """Fed: the agency's own name, respelt in case and spacing. Must survive: access."""
    user, token = admin(stack).add_user("tf2", OWNER_ID, employer=" denver  co pd ")
    assert stack.sg.access.authenticate(token).agency_id == OWNER_ID == user.agency_id


def test_agency_without_mou_is_refused(stack: Stack) -> None:
    with pytest.raises(RegistryError, match="MOU"):
        admin(stack).add_agency("Greeley CO PD", AgencyKind.MOU, "")
    with pytest.raises(RegistryError):
        admin(stack).add_agency("Greeley CO PD", AgencyKind.OWNER, "x")
    # An MOU entry whose reference was removed, or any other kind, loses access.
    signed_edit(stack.sg.data, "agency", MOU_ID, mou_reference="")
    with pytest.raises(AccessDeniedError) as exc:
        stack.sg.access.authenticate(stack.tokens["aur"])
    assert exc.value.code == "agency_without_mou"
    signed_edit(stack.sg.data, "agency", MOU_ID, mou_reference="x", kind="partner")
    with pytest.raises(AccessDeniedError):
        stack.sg.access.authenticate(stack.tokens["aur"])


def test_an_agency_the_policy_refuses_cannot_be_enabled(
    data_server: LocalRedis, stack: Stack, server: LocalRedis,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from alpr.cli import app

    for name in ("REDIS_URL", "HOTLIST_REDIS_URL"):
        monkeypatch.setenv(f"ALPR_SG_{name}", data_server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    admin(stack).set_agency_enabled(MOU_ID, False)
    signed_edit(stack.sg.data, "agency", MOU_ID, name="DEA Aurora Task Force")
    result = CliRunner().invoke(app, ["agency", "enable", MOU_ID])
    assert result.exit_code == 1 and "refused" in result.output and "federal" in result.output
    assert stack.sg.access.agency(MOU_ID).enabled is False
    last = list(stack.sg.audit.records())[-1]
    assert (last.actor, last.action, last.decision) == (
        "admin:root", "agency_enable", "refused:registry")
    signed_edit(stack.sg.data, "agency", MOU_ID, name="Aurora CO PD", mou_reference="")
    with pytest.raises(RegistryError, match="memorandum"):
        admin(stack).set_agency_enabled(MOU_ID, True)


def test_new_mou_agency_gets_access(stack: Stack, data_client: redis.Redis) -> None:
    # The policy's MOU list comes first: an agency it does not name is refused...
    with pytest.raises(RegistryError, match="not on the policy's MOU list"):
        admin(stack).add_agency("Greeley CO PD", AgencyKind.MOU, "MOU-2025-17")
    # ... and one the site added to its policy can be registered and used.
    policy = load_policy(mou_agencies=[*load_policy().mou_agencies, "Greeley CO PD"])
    access = AccessRegistry(data_client, policy, token_cost=2**10, signer=TEST_SIGNER)
    site = Admin(access, stack.sg.audit, "test-operator")
    agency = site.add_agency("Greeley CO PD", AgencyKind.MOU, "MOU-2025-17")
    _, token = site.add_user("gr1", agency.agency_id)
    assert access.authenticate(token).agency_name == "Greeley CO PD"


@pytest.mark.parametrize("store", ["data", "audit"])
def test_tokens_are_only_stored_hashed(stack: Stack, store: str) -> None:
    token = stack.tokens["det"]
    secret = token.rsplit(".", 1)[1]
    client = stack.sg.data if store == "data" else stack.sg.audit.client
    for key in client.scan_iter(match="*", count=1000):
        kind = client.type(key)
        values = (client.hgetall(key).values() if kind == b"hash" else
                  [client.get(key) or b""] if kind == b"string" else
                  [f for _, e in client.xrange(key) for f in e.values()] if kind == b"stream"
                  else [])
        assert not any(secret.encode() in v for v in values), key
    assert stack.sg.data.hget("alpr:sg:user:det", "token_hash").startswith(b"scrypt$")


def test_production_tokens_use_full_scrypt_cost(client: redis.Redis) -> None:
    registry = AccessRegistry(client, load_policy(), signer=TEST_SIGNER)
    registry.ensure_defaults()
    _, token = registry.add_user("prod1", OWNER_ID)
    assert client.hget("alpr:sg:user:prod1", "token_hash").startswith(b"scrypt$16384$8$1$")
    assert registry.authenticate(token).user_id == "prod1"


def test_each_user_has_own_credentials(stack: Stack) -> None:
    access = stack.sg.access
    assert access.authenticate(stack.tokens["det"]).user_id == "det"
    assert access.authenticate(stack.tokens["aur"]).agency_id == MOU_ID
    # det's id with aur's secret: not a valid credential.
    spliced = "sg1.det." + stack.tokens["aur"].rsplit(".", 1)[1]
    with pytest.raises(AccessDeniedError) as exc:
        access.authenticate(spliced)
    assert exc.value.status == 401


def test_disabling_a_user_takes_effect_at_once(stack: Stack) -> None:
    http = TestClient(create_app(stack.sg))
    assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
    admin(stack).set_user_enabled("det", False)
    res = http.post("/search", json=SEARCH, headers=stack.auth("det"))
    assert (res.status_code, res.json()["error"]) == (403, "user_disabled")
    admin(stack).set_user_enabled("det", True)
    assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200


def test_disabling_an_agency_takes_effect_at_once(stack: Stack) -> None:
    http = TestClient(create_app(stack.sg))
    assert http.post("/search", json=SEARCH, headers=stack.auth("aur")).status_code == 200
    admin(stack).set_agency_enabled(MOU_ID, False)
    res = http.post("/search", json=SEARCH, headers=stack.auth("aur"))
    assert (res.status_code, res.json()["error"]) == (403, "agency_disabled")
    # Other agencies are untouched; seeding defaults again does not re-enable it.
    assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
    admin(stack).ensure_defaults()
    assert http.post("/search", json=SEARCH, headers=stack.auth("aur")).status_code == 403


def test_rotated_token_replaces_the_old_one(stack: Stack) -> None:
    old = stack.tokens["det"]
    assert stack.sg.access.authenticate(old).user_id == "det"  # checked once: cached
    new = admin(stack).rotate_token("det")
    with pytest.raises(AccessDeniedError):
        stack.sg.access.authenticate(stack.tokens["det"])
    assert stack.sg.access.authenticate(new).user_id == "det"


def test_only_owner_users_can_verify_alerts(stack: Stack) -> None:
    with pytest.raises(RegistryError, match="owning agency"):
        admin(stack).add_user("aur2", MOU_ID, roles=[Role.VERIFY])


def test_registry_changes_are_audited(stack: Stack) -> None:
    before = stack.sg.audit.head().seq
    admin(stack).set_agency_enabled(MOU_ID, False)
    with pytest.raises(RegistryError):
        admin(stack).add_agency("ICE Denver", AgencyKind.MOU, "x")
    records = list(stack.sg.audit.records())[before:]
    # Write-ahead: each change is `requested` before it is made, then its outcome.
    assert [(r.actor, r.action, r.decision) for r in records] == [
        ("test-operator", "agency_disable", "requested"),
        ("test-operator", "agency_disable", "allowed"),
        ("test-operator", "agency_add", "requested"),
        ("test-operator", "agency_add", "refused:registry"),
    ]
    assert [r.details.get("request_seq") for r in records] == [
        None, records[0].seq, None, records[2].seq]


# --- the policy's MOU list is the one source of MOU access -----------------------------


DISMISS = {"outcome": "dismissed", "check_system": "NCIC", "check_result": "not_found",
           "image_matches": False}


def test_agency_taken_off_the_mou_list_loses_access_at_once(data_server: LocalRedis,
                                                            data_client: redis.Redis,
    client: redis.Redis, server: LocalRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from alpr.cli import app

    policy_file = site_policy(tmp_path, monkeypatch, server, data_server)
    stack = build_stack(data_client, client)  # a running API: built once, before the edit
    http = TestClient(create_app(stack.sg))
    cli_search = ["search", "--plate", SEARCH["plate"], "--case", SEARCH["case_number"],
                  "--offence", SEARCH["offence"], "--reason", SEARCH["reason"],
                  "--token-file", "-"]
    assert http.post("/search", json=SEARCH, headers=stack.auth("aur")).status_code == 200
    assert CliRunner().invoke(app, cli_search, input=stack.tokens["aur"]).exit_code == 0
    before = stack.sg.audit.head().seq

    # The administrator takes Aurora off the MOU list in the policy file; nothing else.
    edit(policy_file, "  - Aurora CO PD\n", "")
    assert stack.sg.access.agency(MOU_ID).enabled  # the registry entry is untouched

    res = http.post("/search", json=SEARCH, headers=stack.auth("aur"))
    assert (res.status_code, res.json()["error"]) == (403, "no_mou")
    result = CliRunner().invoke(app, cli_search, input=stack.tokens["aur"])
    assert result.exit_code == 1 and "refused (no_mou)" in result.output
    listed = CliRunner().invoke(app, ["agency", "list"]).output.splitlines()
    assert [line.split()[2] for line in listed if line.startswith(f"{MOU_ID} ")] == [
        "NO-ACCESS"]
    res = http.post(f"/alerts/{'0' * 32}/verification", json=DISMISS,
                    headers=stack.auth("aur"))
    assert (res.status_code, res.json()["error"]) == (403, "no_mou")
    assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
    # No way around the policy through the registry, and the public page follows it.
    with pytest.raises(RegistryError, match="not on the policy's list"):
        admin(stack).set_agency_enabled(MOU_ID, True)
    assert "Aurora CO PD" not in stack.sg.transparency.report(
    ).external_organisations_with_access

    records = list(stack.sg.audit.records())[before:]
    refused = [(r.actor, r.agency, r.action, r.details.get("channel")) for r in records
               if r.decision == "refused:no_mou"]
    assert refused == [("aur", MOU_ID, "search", "http"), ("aur", MOU_ID, "search", "cli"),
                       ("aur", MOU_ID, "alert_verification", "http")]
    assert stack.sg.audit.verify().ok

    # Back on the list (a renewed MOU): access returns with no registry change.
    edit(policy_file, "  - Avon CO PD\n", "  - Aurora CO PD\n  - Avon CO PD\n")
    assert http.post("/search", json=SEARCH, headers=stack.auth("aur")).status_code == 200


def test_an_unreadable_policy_refuses_everyone(data_server: LocalRedis, data_client: redis.Redis,
    client: redis.Redis, server: LocalRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fail closed: a broken edit must not leave the previous MOU list in force.
    policy_file = site_policy(tmp_path, monkeypatch, server, data_server)
    stack = build_stack(data_client, client)
    http = TestClient(create_app(stack.sg))
    edit(policy_file, "owning_agency: Denver CO PD", "owning_agency: [")
    res = http.post("/search", json=SEARCH, headers=stack.auth("det"))
    assert (res.status_code, res.json()["error"]) == (503, "policy_unavailable")
    last = list(stack.sg.audit.records())[-1]
    assert (last.action, last.decision) == ("search", "refused:policy_unavailable")
    assert stack.sg.audit.verify().ok


def _policy_changes(stack: Stack, after_seq: int = 0) -> list[AuditRecord]:
    return [r for r in stack.sg.audit.records() if r.action == "policy_changed"
            and r.seq > after_seq]


def test_a_change_to_the_mou_list_is_audited_once(data_server: LocalRedis, data_client: redis.Redis,
    client: redis.Redis, server: LocalRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from alpr.cli import app

    policy_file = site_policy(tmp_path, monkeypatch, server, data_server)
    stack = build_stack(data_client, client)  # API process 1
    # API process 2: its own clients and policy reader, the same Redis and policy file.
    other = Safeguards.build(data=data_server.client(), audit=server.client(),
                             signer=TEST_SIGNER)
    http, http2 = TestClient(create_app(stack.sg)), TestClient(create_app(other))
    # The first policy a trail sees is recorded as the one in force.
    (first,) = _policy_changes(stack)
    assert "Aurora CO PD" in first.details["added"] and first.details["removed"] == []
    assert first.details["mou_agencies"] == 66
    assert http2.post("/search", json=SEARCH, headers=stack.auth("aur")).status_code == 200
    before = stack.sg.audit.head().seq

    edit(policy_file, "  - Aurora CO PD\n", "")
    res = http.post("/search", json=SEARCH, headers=stack.auth("aur"))
    assert (res.status_code, res.json()["error"]) == (403, "no_mou")
    assert http2.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
    cli_search = ["search", "--plate", SEARCH["plate"], "--case", SEARCH["case_number"],
                  "--offence", SEARCH["offence"], "--reason", SEARCH["reason"],
                  "--token-file", "-"]
    assert CliRunner().invoke(app, cli_search,  # a third process
                              input=stack.tokens["det"]).exit_code == 0

    (change,) = _policy_changes(stack, before)
    assert change.seq == before + 1  # before the refusal it explains
    assert (change.actor, change.action, change.decision) == (
        "system", "policy_changed", "in_force")
    assert {k: change.details[k] for k in ("added", "removed", "terms_changed")} == {
        "added": [], "removed": ["Aurora CO PD"], "terms_changed": ["mou_agency_ids"]}
    assert change.details["file_sha256"] == hashlib.sha256(policy_file.read_bytes()
                                                           ).hexdigest()
    assert change.details["previous_file_sha256"] == first.details["file_sha256"]
    assert change.details["mou_agencies"] == 65

    # An edit that changes nothing access depends on is no record.
    seq = stack.sg.audit.head().seq
    edit(policy_file, "owning_agency:", "# reviewed 2025-06\nowning_agency:")
    assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
    assert _policy_changes(stack, seq) == []

    # Aurora back on the list, noticed by several processes at the same moment: still
    # one record (the check and the append are one atomic step).
    edit(policy_file, "  - Avon CO PD\n", "  - Aurora CO PD\n  - Avon CO PD\n")
    readers = [AuditedPolicy(policy_file, AuditLog(server.client())) for _ in range(6)]
    barrier = threading.Barrier(len(readers))

    def read(reader: AuditedPolicy) -> bool:
        barrier.wait()
        return reader().has_mou(MOU_ID)

    with ThreadPoolExecutor(len(readers)) as pool:
        assert all(pool.map(read, readers))
    assert http2.post("/search", json=SEARCH, headers=stack.auth("aur")).status_code == 200
    (back,) = _policy_changes(stack, seq)
    assert (back.details["added"], back.details["removed"]) == (["Aurora CO PD"], [])

    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and result.output.startswith("OK:"), result.output
    assert len(_policy_changes(stack)) == 3


def test_a_policy_change_that_cannot_be_audited_is_not_used(data_server: LocalRedis,
    client: redis.Redis, server: LocalRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fail closed: no request is decided under terms the audit trail does not show.
    policy_file = site_policy(tmp_path, monkeypatch, server, data_server)
    reader = AuditedPolicy(policy_file, AuditLog(redis.Redis(port=1)))
    with pytest.raises(PolicyError, match="could not be audited"):
        reader()
