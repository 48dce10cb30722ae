"""Issue 17, item 1: administration only by an authenticated administrator (token +
TOTP, kept outside Redis), and registry records the API accepts only when they were
made that way (signed with a key kept outside Redis)."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
import redis
from fastapi.testclient import TestClient
from safeguard_builders import OWNER_ID, TEST_SIGNER, AdminFiles, Stack
from typer.testing import CliRunner

from alpr.cli import app
from safeguards.access import _hash_token
from safeguards.admin_auth import AdminAuthError, AdminDirectory
from sim.local_services import LocalRedis

SEARCH = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
          "reason": "Armed robbery at a gas station, suspect vehicle seen leaving"}


@pytest.fixture
def cli_env(data_server: LocalRedis, server: LocalRedis,
            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "HOTLIST_REDIS_URL"):
        monkeypatch.setenv(f"ALPR_SG_{name}", data_server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    monkeypatch.delenv("ALPR_SG_POLICY_FILE", raising=False)


def test_a_user_written_straight_into_redis_gets_nothing(stack: Stack, http: TestClient,
                                                         cli_env: None) -> None:
    """Fed: a user hash with a valid-looking scrypt token hash, written straight into the
    data Redis (what the review did). Must survive: its search is refused 401 and
    audited as an unsigned record, and `alpr user list` shows it UNSIGNED."""
    token = "sg1.mallory." + "x" * 43
    data = stack.sg.data
    data.hset("alpr:sg:user:mallory", mapping={
        "name": "mallory", "agency_id": OWNER_ID, "employer": "Denver CO PD",
        "roles": "search", "enabled": "1", "token_hash": _hash_token(token, 2**10),
        "created_at": "0", "token_expires_at": str(2**62)})
    data.sadd("alpr:sg:users", "mallory")
    res = http.post("/search", json=SEARCH, headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 401
    last = list(stack.sg.audit.records())[-1]
    assert (last.decision, last.details["claimed_user"]) == (
        "refused:user_record_not_signed", "mallory")
    listed = CliRunner().invoke(app, ["user", "list"]).output.splitlines()
    assert [line.split()[-1] for line in listed if line.startswith("mallory ")] == [
        "UNSIGNED"]


def test_an_enabled_flag_flipped_in_redis_does_not_restore_access(
        stack: Stack, http: TestClient) -> None:
    """Fed: det disabled by an administrator, then `enabled` set back to 1 straight in
    Redis. Must survive: det stays refused (the record no longer carries a valid
    signature)."""
    from safeguards.admin import Admin

    Admin(stack.sg.access, stack.sg.audit, "admin:root").set_user_enabled("det", False)
    stack.sg.data.hset("alpr:sg:user:det", "enabled", "1")
    res = http.post("/search", json=SEARCH, headers=stack.auth("det"))
    assert res.status_code == 401


@pytest.mark.parametrize("how", ["no token", "wrong totp", "other admin's totp",
                                 "forged token"])
def test_administration_needs_the_admin_token_and_totp(
        how: str, stack: Stack, cli_env: None, admin_files: AdminFiles, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fed: `alpr user add` with a missing token, a wrong TOTP code, or a token of an
    admin not in the administrators file. Must survive: exit 1, no user created, and
    one `admin_login` refusal on the audit trail."""
    if how == "no token":
        monkeypatch.delenv("ALPR_ADMIN_TOKEN_FILE")
    elif how == "wrong totp":
        code = pyotp.TOTP(admin_files.totp_secret).now()
        monkeypatch.setenv("ALPR_ADMIN_TOTP", f"{(int(code) + 1) % 10**6:06d}")
    elif how == "other admin's totp":
        monkeypatch.setenv("ALPR_ADMIN_TOTP", pyotp.TOTP(pyotp.random_base32()).now())
    else:
        forged = tmp_path / "forged.token"
        forged.write_text("sga1.eve." + "y" * 43)
        monkeypatch.setenv("ALPR_ADMIN_TOKEN_FILE", str(forged))
    before = stack.sg.audit.head().seq
    result = CliRunner().invoke(app, ["user", "add", "newbie", "--agency", OWNER_ID])
    assert result.exit_code == 1, result.output
    assert "refused" in result.stderr
    assert stack.sg.access.user("newbie") is None
    (record,) = list(stack.sg.audit.records())[before:]
    assert (record.action, record.decision) == ("admin_login",
                                                "refused:admin_authentication")


def test_an_authenticated_admin_is_the_audited_operator(stack: Stack, cli_env: None,
                                                        admin_files: AdminFiles) -> None:
    """Fed: `alpr user add` with the admin token read from stdin ('-') and its TOTP.
    Must survive: the user is created and signed, and the trail names `admin:root`."""
    result = CliRunner().invoke(
        app, ["user", "add", "newbie", "--agency", OWNER_ID, "--admin-token-file", "-"],
        input=admin_files.token_file.read_text() + "\n")
    assert result.exit_code == 0, result.output
    user = stack.sg.access.user("newbie")
    assert user is not None and user.signed
    actors = {r.actor for r in stack.sg.audit.records() if r.action == "user_add"
              and r.details.get("user_id") == "newbie"}
    assert actors == {"admin:root"}


def test_admin_directory_checks_both_factors(tmp_path: Path) -> None:
    """Fed: the right token with a wrong code, a wrong token with the right code, both
    right. Must survive: only both right is the administrator."""
    directory = AdminDirectory(tmp_path / "admins.json", token_cost=2**10)
    token, secret = directory.add("alice")
    assert oct((tmp_path / "admins.json").stat().st_mode & 0o777) == "0o600"
    code = pyotp.TOTP(secret).now()
    assert directory.authenticate(token, code) == "alice"
    with pytest.raises(AdminAuthError):
        directory.authenticate(token, f"{(int(code) + 1) % 10**6:06d}")
    with pytest.raises(AdminAuthError):
        directory.authenticate(token[:-2] + "zz", code)
    assert token not in (tmp_path / "admins.json").read_text()


def test_records_signed_with_another_key_are_refused(stack: Stack,
                                                    data_client: redis.Redis) -> None:
    """Fed: the registry read with a different record key. Must survive: every record
    reads as unsigned (the key, not Redis, is what makes a record valid)."""
    from safeguards.access import AccessRegistry
    from safeguards.admin_auth import RecordSigner

    other = AccessRegistry(data_client, stack.sg.access.policy,
                           signer=RecordSigner(b"o" * 32))
    assert TEST_SIGNER.key != b"o" * 32
    assert [u.signed for u in other.users()] == [False, False, False]
    assert [u.signed for u in stack.sg.access.users()] == [True, True, True]
