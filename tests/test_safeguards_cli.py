"""The `alpr` subcommands of the safeguards: every one has a working --help, and an
outage (a Redis unreachable at start or going away mid-command) is one clear line and
exit 2, with nothing changed or half written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import pytest
import redis
import typer
from click.testing import Result
from deadlines import finish_within
from redis.commands.core import Script
from safeguard_builders import MOU_ID, build_stack
from typer.main import get_command
from typer.testing import CliRunner

from alpr.cli import app
from safeguards.access import AccessDeniedError
from safeguards.audit import AuditLog
from safeguards.cli import register
from safeguards.wiring import Safeguards
from sim.local_services import LocalRedis, free_port

ROOT = Path(__file__).resolve().parents[1]


def _safeguard_commands() -> list[tuple[list[str], click.Command]]:
    """(path, command) of every command and group the safeguards add to `alpr`."""
    own = typer.Typer()
    register(own)
    found: list[tuple[list[str], click.Command]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if path:
            found.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(own), [])
    return found


COMMANDS = _safeguard_commands()


def test_the_walk_finds_every_command() -> None:
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"search", "serve", "transparency", "audit verify", "audit export", "audit head",
            "agency list", "agency add", "agency seed", "agency enable", "agency disable",
            "user add", "user list", "user enable", "user disable", "user rotate-token",
            "retention topics", "retention ingest", "retention hotlist-updates"} <= paths


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_subcommand_has_help(path: list[str]) -> None:
    command = dict((tuple(p), c) for p, c in COMMANDS)[tuple(path)]
    assert (command.help or "").strip(), f"`alpr {' '.join(path)}` has no help text"
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="alpr")
    assert result.exit_code == 0, result.output
    assert f"Usage: alpr {' '.join(path)}" in " ".join(result.output.split())


def test_help_through_the_real_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "alpr.cli", "audit", "verify", "--help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--anchor" in result.stdout


# --- outages: one line, exit 2, nothing lost --------------------------------------------

# Every command that works on the Redis data or the audit trail, with valid arguments.
REDIS_COMMANDS = [
    ["agency", "list"], ["agency", "list", "--json"],
    ["agency", "add", "Aurora CO PD", "--mou-reference", "MOU-2025-7"],
    ["agency", "seed"], ["agency", "disable", MOU_ID], ["agency", "enable", MOU_ID],
    ["audit", "verify"], ["audit", "head"], ["audit", "export", "--since", "2000-01-01"],
    ["audit", "export", "--since", "2000-01-01", "--out", "{tmp}/audit.csv"],
    ["user", "list"], ["user", "add", "newbie", "--agency", MOU_ID],
    ["user", "disable", "aur"], ["user", "enable", "aur"], ["user", "rotate-token", "aur"],
    ["transparency"],
]


def _point_at(monkeypatch: pytest.MonkeyPatch, url: str, audit_url: str | None = None
              ) -> None:
    """Data and hotlists at `url`, the audit trail at `audit_url` (a server of its own;
    default: the same URL, for commands that never get to compare the two)."""
    for name in ("REDIS_URL", "HOTLIST_REDIS_URL"):
        monkeypatch.setenv(f"ALPR_SG_{name}", url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", audit_url or url)
    monkeypatch.delenv("ALPR_SG_POLICY_FILE", raising=False)


def _contents(client: redis.Redis) -> dict[bytes, Any]:
    """Every key and its value, read by type (DUMP bytes change with a reload's encoding)."""
    read = {b"string": client.get, b"hash": client.hgetall, b"set": client.smembers,
            b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            b"stream": lambda k: client.xrange(k)}
    return {k: read[client.type(k)](k) for k in sorted(client.scan_iter(count=1000))}


def _assert_one_clear_line(result: Result, starts: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped error
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(starts), result.stderr


@pytest.mark.parametrize("args", REDIS_COMMANDS, ids=" ".join)
def test_redis_unreachable_at_start_is_one_clear_line(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _point_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
    _assert_one_clear_line(result, "cannot start: ")
    assert "Connection refused" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", REDIS_COMMANDS, ids=" ".join)
def test_redis_going_away_mid_command_is_one_clear_line_and_loses_nothing(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with LocalRedis(appendonly=True) as server, LocalRedis(appendonly=True) as data:
        client, data_client = server.client(), data.client()
        build_stack(data_client, client)  # agencies, users det/disp/aur, audit records
        before = _contents(client), _contents(data_client)
        client.close()
        data_client.close()
        _point_at(monkeypatch, data.url, server.url)
        build = Safeguards.build

        def build_then_die(*a: Any, **kw: Any) -> Safeguards:
            # The command has connected and checked the audit Redis: now both go away.
            sg = build(*a, **kw)
            server.stop()
            data.stop()
            return sg

        monkeypatch.setattr(Safeguards, "build", build_then_die)
        result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
        _assert_one_clear_line(result, "error: ")
        assert "Connection refused" in result.stderr
        assert result.stdout == ""  # nothing half-printed (no partial list, no CSV)
        assert list(tmp_path.iterdir()) == []  # no CSV, no .partial file left behind

        # Back up (same AOF): no change was made, no audit record lost or half written.
        server.start()
        data.start()
        client, data_client = server.client(), data.client()
        assert (_contents(client), _contents(data_client)) == before
        assert AuditLog(client).verify().ok
        client.close()
        data_client.close()


@pytest.mark.parametrize("out", ["-", "{tmp}/audit.csv"])
def test_an_export_the_trail_cannot_record_is_not_handed_out(
    out: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with LocalRedis(appendonly=True) as server, LocalRedis() as data:
        client = server.client()
        build_stack(data.client(), client)
        records = client.xlen(AuditLog(client).stream_key)
        _point_at(monkeypatch, data.url, server.url)
        export_csv = AuditLog.export_csv

        def export_then_die(self: AuditLog, *a: Any, **kw: Any) -> int:
            # Every row written; the audit Redis goes away before the export's own record.
            rows = export_csv(self, *a, **kw)
            server.stop()
            return rows

        monkeypatch.setattr(AuditLog, "export_csv", export_then_die)
        result = CliRunner().invoke(app, ["audit", "export", "--since", "2000-01-01",
                                          "--out", out.format(tmp=tmp_path)])
        _assert_one_clear_line(result, "error: ")
        assert result.stdout == "" and list(tmp_path.iterdir()) == []
        server.start()
        assert client.xlen(AuditLog(client).stream_key) == records


def test_bad_redis_url_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _point_at(monkeypatch, "http://127.0.0.1:6379/0")
    result = CliRunner().invoke(app, ["agency", "list"])
    _assert_one_clear_line(result, "cannot start: ")
    assert "redis://" in result.stderr


def test_data_redis_down_through_the_real_entry_point(server: LocalRedis) -> None:
    # The audit Redis answers, the data Redis does not: one line, exit 2, in a real
    # process with typer's own error handling.
    env = {**os.environ, "ALPR_SG_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "ALPR_SG_AUDIT_REDIS_URL": server.url, "ALPR_SG_HOTLIST_REDIS_URL": server.url}
    env.pop("ALPR_SG_POLICY_FILE", None)
    for args in (["agency", "list"], ["agency", "disable", MOU_ID]):
        result = subprocess.run([sys.executable, "-m", "alpr.cli", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        # The start-up check that it is not the audit's server asks it first.
        assert result.stderr.startswith("cannot start: "), result.stderr
        assert "Connection refused" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- a user change made whose outcome record cannot be written --------------------------

HANG_TIMEOUT_S = 0.5  # ALPR_REDIS_SOCKET_TIMEOUT_S of the command's clients here
HANG_DEADLINE_S = 6.0  # the command must end within this, audit Redis frozen or not


@pytest.mark.parametrize(("args", "action", "user"), [
    (["user", "add", "newdisp", "--agency", "denver-co-pd", "--role", "verify"],
     "user_add", "newdisp"),
    (["user", "rotate-token", "det"], "user_rotate_token", "det"),
], ids=["user add", "user rotate-token"])
def test_a_user_change_whose_outcome_record_times_out_prints_its_token_and_exits_3(
    args: list[str], action: str, user: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: `alpr user add` / `alpr user rotate-token` on their own data and (durable)
    # audit Redis, the audit Redis frozen (SIGSTOP) just as the `allowed` outcome record
    # is sent: after the `requested` record and the change in the data Redis. Must
    # hold: the command ends in time with exit 3 (not 2, "not done", which is false);
    # stdout ends with the new token, which logs the user in (for rotate-token, the old
    # one no longer does); stderr is one line saying it is done and in effect and that
    # the trail holds its request, not its outcome; after the thaw the trail holds the
    # `requested` record for the change and the chain verifies. (Before: exit 2,
    # "error: audit trail unavailable", no token printed: a user with an unknown token.)
    monkeypatch.setenv("ALPR_REDIS_SOCKET_TIMEOUT_S", str(HANG_TIMEOUT_S))
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit:
        stack = build_stack(data.client(), audit.client())
        old_token = stack.tokens["det"]
        monkeypatch.setenv("ALPR_SG_REDIS_URL", data.url)
        monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", data.url)
        monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", audit.url)
        monkeypatch.delenv("ALPR_SG_POLICY_FILE", raising=False)
        before = stack.sg.audit.head().seq
        call = Script.__call__
        frozen: list[Any] = []

        def freeze_then_append(self: Script, keys: Any = None, args: Any = None,
                               client: Any = None) -> Any:
            text = b"".join(a if isinstance(a, bytes) else str(a).encode()
                            for a in args or ())
            if b'"decision":"allowed"' in text and f'"{action}"'.encode() in text:
                frozen.append(audit.paused())
                frozen[-1].__enter__()
            return call(self, keys, args, client)

        monkeypatch.setattr(Script, "__call__", freeze_then_append)
        try:
            result = finish_within(HANG_DEADLINE_S, lambda: CliRunner().invoke(
                app, args))
        finally:
            for pause in frozen:
                pause.__exit__(None, None, None)
            monkeypatch.setattr(Script, "__call__", call)
        assert frozen, "the outcome record was never sent"
        assert result.exit_code == 3, (result.exit_code, result.output)
        assert "Traceback" not in result.output
        token = result.stdout.strip().splitlines()[-1]
        assert stack.sg.access.authenticate(token).user_id == user
        if user == "det":
            assert token != old_token
            with pytest.raises(AccessDeniedError):
                stack.sg.access.authenticate(old_token)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "done and in effect" in result.stderr
        assert "not its outcome" in result.stderr
        assert "not done" not in result.stderr
        time.sleep(1.0)  # the thawed server runs what it was sent before it froze
        new = list(AuditLog(audit.client()).records())[before:]
        assert (new[0].actor, new[0].action, new[0].decision) == (
            "admin:root", action, "requested")
        assert AuditLog(audit.client()).verify().ok
