"""A Redis that hangs (stopped, black-holed) rather than dies fails as clearly, and as
soon, as a dead one: every client times out after ALPR_REDIS_SOCKET_TIMEOUT_S
(kernel.redis_client) and each caller takes the path it has for an outage.

Each test starts its own redis-server, freezes it with SIGSTOP (`LocalRedis.paused`: it
accepts connections and never answers) and thaws it when the block ends, whatever
happens. The timeout is 0.5 s; an operation must end within DEADLINE_S, well under
redis-py's own default (5 s in 8.x, no timeout at all before) and far from forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from click.testing import Result
from deadlines import finish_within
from fastapi.testclient import TestClient
from hotlist_helpers import entry, version_keys
from redis.commands.core import Script
from safeguard_builders import (
    MOU_ID,
    Stack,
    build_stack,
    make_alert,
    make_entry,
    make_read,
)
from typer.testing import CliRunner

import hotlists.store
from alpr.cli import app
from connectors.flow_sink import OutRecord
from connectors.kafka import delete_topics, read_all
from flows import metrics
from flows.hotlist_join import Parked
from flows.pipeline import ParkedJoins, join_batch
from hotlists.importers.ncic import format_record
from hotlists.store import HotlistStore
from kernel.contracts import HotlistSource
from kernel.settings import Settings
from safeguards.api import create_app
from safeguards.audit import OUTCOME_UNKNOWN, REQUESTED, AuditLog, AuditRecord
from safeguards.settings import SafeguardSettings
from safeguards.wiring import Safeguards
from sim.local_services import LocalRedis

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 0.5
# One or two timed-out calls plus the command's own work, with room for a loaded machine.
DEADLINE_S = 4.0
SEARCH = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
          "reason": "Armed robbery at a 7-Eleven, suspect vehicle seen leaving the lot"}

T = TypeVar("T")


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPR_REDIS_SOCKET_TIMEOUT_S", str(TIMEOUT_S))


@pytest.fixture
def hotlist_redis() -> Iterator[LocalRedis]:
    """A Redis holding an NCIC list with HOT123 on it."""
    with LocalRedis() as server:
        HotlistStore(server.client()).replace_source(
            HotlistSource.NCIC, [entry("HOT123", "N1"), entry("HOT456", "N2")])
        yield server


def within_deadline(call: Callable[[], T]) -> T:
    """call() in a thread; fails if it has not ended after DEADLINE_S (the thread then
    ends when the caller's `paused` block thaws the server)."""
    return finish_within(DEADLINE_S, call)


# Our prefix, then the client's own reason (its wording is redis-py's, not ours to test).
REDIS_DOWN = re.compile(r"error: Redis unavailable: \S[^\n]*$")


def assert_redis_unavailable_line(stderr: str) -> None:
    """stderr is exactly one line: our prefix and a reason, no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and REDIS_DOWN.match(lines[0]), stderr


def assert_one_clear_line(result: Result) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped error
    assert "Traceback" not in result.output
    assert_redis_unavailable_line(result.stderr)


# --- CLI --------------------------------------------------------------------------------


def test_hotlist_status_on_a_hung_redis_is_one_clear_line(hotlist_redis: LocalRedis) -> None:
    # Fed: `alpr hotlist status` against a Redis holding a list, frozen. Must hold: exit
    # 2 with one line, no traceback, within the deadline; the list is still there after.
    args = ["hotlist", "status", "--redis", hotlist_redis.url]
    with hotlist_redis.paused():
        result = within_deadline(lambda: CliRunner().invoke(app, args))
    assert_one_clear_line(result)
    assert result.stdout == ""
    after = CliRunner().invoke(app, args)
    assert after.exit_code == 0 and "NCIC: version=1 entries=2" in after.stdout, after.output


def test_hotlist_status_on_a_hung_redis_through_the_real_entry_point(
    hotlist_redis: LocalRedis,
) -> None:
    # Fed: the same, in a real `python -m alpr.cli` process (typer's own error handling,
    # interpreter start-up included, so a looser bound). Must hold: exit 2, one line.
    env = {**os.environ, "ALPR_REDIS_SOCKET_TIMEOUT_S": str(TIMEOUT_S)}
    with hotlist_redis.paused():
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "alpr.cli", "hotlist", "status", "--redis",
             hotlist_redis.url], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=30)
        elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert_redis_unavailable_line(result.stderr)


def _ncic_file(path: Path, rows: int, prefix: str) -> Path:
    records = [format_record("V", f"{prefix}{n:05d}", "CO", record_id=f"{n:09d}CO0000000")
               for n in range(rows)]
    path.write_text("\n".join(["NCIC LPR EXTRACT 202401150600", *records]) + "\n",
                    encoding="latin-1")
    return path


def _import_process(url: str, file: Path) -> subprocess.Popen[str]:
    """`alpr hotlist import` of an NCIC file in a real process (nothing of pytest's
    logging set-up, which would hide what an operator sees)."""
    return subprocess.Popen(
        [sys.executable, "-m", "alpr.cli", "hotlist", "import", str(file), "-s", "ncic",
         "--no-events", "--redis", url], cwd=ROOT,
        env={**os.environ, "ALPR_REDIS_SOCKET_TIMEOUT_S": str(TIMEOUT_S)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _import_in_process(url: str, file: Path) -> Result:
    return CliRunner().invoke(app, ["hotlist", "import", str(file), "-s", "ncic",
                                    "--no-events", "--redis", url])


def _wait_for_first_batch(client: redis.Redis, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while int(client.hget("alpr:hl:NCIC:v2:meta", "count") or 0) == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the import never wrote a batch"
        time.sleep(0.005)


def assert_import_failed_clearly(returncode: int | None, stdout: str, stderr: str) -> None:
    """Exit 1 (an import that did not happen), one `error:` line, at most one-line
    warnings about the cleanup, no traceback."""
    assert returncode == 1, stderr
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert stdout == ""
    lines = stderr.strip().splitlines()
    [error] = [line for line in lines if line.startswith("error:")]
    assert error.startswith("error: Redis unavailable: "), error
    assert error.endswith(" (import failed, the serving list is unchanged)"), error
    warnings = [line for line in lines if line != error]
    assert all(w.startswith("warning: hotlist NCIC: could not ") for w in warnings), stderr


def test_hotlist_import_on_a_hung_redis_is_one_clear_line(
    hotlist_redis: LocalRedis, tmp_path: Path,
) -> None:
    # Fed: `alpr hotlist import` of a 3-record NCIC file, in a real process, while the
    # Redis serving a 2-entry list is frozen. Must hold: exit 1 with one `error:` line and
    # one-line warnings, no traceback; once Redis answers, the old list still serves.
    # With -v (in process) the warnings' tracebacks are shown.
    new = _ncic_file(tmp_path / "ncic.txt", 3, "NW")
    with hotlist_redis.paused():
        proc = _import_process(hotlist_redis.url, new)
        out, err = proc.communicate(timeout=30)
        verbose = within_deadline(lambda: CliRunner().invoke(app, [
            "-v", "hotlist", "import", str(new), "-s", "ncic", "--no-events", "--redis",
            hotlist_redis.url]))
    assert_import_failed_clearly(proc.returncode, out, err)
    last = err.strip().splitlines()[-1]
    assert REDIS_DOWN.match(last) and last.endswith(
        " (import failed, the serving list is unchanged)"), last
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr, verbose.output
    store = HotlistStore(hotlist_redis.client())
    assert [e.entry_id for e in store.lookup("HOT123")] == ["N1"]
    assert store.lookup("NW00001") == []


def test_hotlist_import_cut_off_by_a_dead_redis_leaves_the_old_list_serving(
    tmp_path: Path,
) -> None:
    # Fed: `alpr hotlist import` of 60,000 NCIC records (12 batches), in a real process;
    # the Redis (AOF) serving a 2-entry list is stopped once the first batch has landed,
    # then restarted from its AOF. Must hold: exit 1 with one `error:` line and one-line
    # warnings, no traceback; after the restart the old version answers lookups and the
    # half-written one is not served.
    big = _ncic_file(tmp_path / "ncic.txt", 60_000, "NW")
    with LocalRedis(appendonly=True) as server:
        HotlistStore(server.client()).replace_source(
            HotlistSource.NCIC, [entry("HOT123", "N1"), entry("HOT456", "N2")])
        proc = _import_process(server.url, big)
        try:
            _wait_for_first_batch(server.client(), proc)
            server.stop()
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert_import_failed_clearly(proc.returncode, out, err)
        server.start()
        store = HotlistStore(server.client())
        assert [e.entry_id for e in store.lookup("HOT123")] == ["N1"]
        assert store.lookup("NW00001") == []
        assert store.status()[HotlistSource.NCIC].version == 1


@pytest.mark.parametrize("cut", ["process killed", "redis died"])
def test_a_cut_off_import_frees_its_source_within_seconds(cut: str, tmp_path: Path) -> None:
    # Fed: `alpr hotlist import` of 60,000 NCIC records in a real process, cut off once
    # its first batch has landed: the process SIGKILLed, or the Redis (AOF) serving a
    # 2-entry list stopped and restarted. Then `hotlist status` and retries of a small
    # import. Must hold: status names the cut-off import's holder (its pid), then calls
    # its lock stale; a retry meanwhile is refused (never two imports at once), naming
    # the holder; one succeeds within 12 s of the cut (the lock's 10 s TTL; it was 120 s);
    # the old list served throughout.
    big = _ncic_file(tmp_path / "ncic.txt", 60_000, "NW")
    retry = _ncic_file(tmp_path / "retry.txt", 3, "RT")
    with LocalRedis(appendonly=True) as server:
        HotlistStore(server.client()).replace_source(
            HotlistSource.NCIC, [entry("HOT123", "N1"), entry("HOT456", "N2")])
        proc = _import_process(server.url, big)
        try:
            _wait_for_first_batch(server.client(), proc)
            if cut == "process killed":
                proc.kill()
                proc.communicate(timeout=30)
            else:
                server.stop()
                proc.communicate(timeout=30)
                server.start()
        finally:
            if proc.poll() is None:
                proc.kill()
        cut_at = time.monotonic()
        status = ["hotlist", "status", "--redis", server.url]
        first = CliRunner().invoke(app, status)
        assert first.exit_code == 0, first.output
        assert f"import lock: held by host {socket.gethostname()} pid {proc.pid} " \
            in first.stdout, first.stdout
        refused = _import_in_process(server.url, retry)
        assert refused.exit_code == 1, refused.output
        assert f"pid {proc.pid}" in refused.stderr, refused.stderr

        stale = None
        while time.monotonic() - cut_at < 12:
            shown = CliRunner().invoke(app, status).stdout
            if " IMPORT LOCK STALE" in shown:
                stale = shown
            if "import lock:" not in shown:
                break
            time.sleep(0.25)
        assert stale is not None, "status never called the cut-off import's lock stale"
        assert "but stale: no heartbeat for " in stale, stale
        assert "CUT-OFF IMPORT: version 2 was never finished" in stale, stale
        store = HotlistStore(server.client())
        assert [e.entry_id for e in store.lookup("HOT123")] == ["N1"]
        done = _import_in_process(server.url, retry)
        assert done.exit_code == 0, done.output
        assert time.monotonic() - cut_at < 12
        assert "NCIC: version 3 live with 3 entries" in done.stdout, done.stdout
        assert store.lookup("HOT123") == [] and store.lookup("NW00001") == []


def test_a_terminated_import_cleans_up_and_frees_its_source_at_once(tmp_path: Path) -> None:
    # Fed: `alpr hotlist import` of 60,000 NCIC records in a real process, sent SIGTERM
    # (kill, docker stop) once its first batch has landed, then an immediate retry of a
    # small import. Must hold: the command says it was interrupted (exit 130, no
    # traceback), its unfinished version is deleted and the lock freed, so the retry
    # succeeds at once; the old list served until then.
    big = _ncic_file(tmp_path / "ncic.txt", 60_000, "NW")
    retry = _ncic_file(tmp_path / "retry.txt", 3, "RT")
    with LocalRedis() as server:
        client = server.client()
        HotlistStore(client).replace_source(
            HotlistSource.NCIC, [entry("HOT123", "N1"), entry("HOT456", "N2")])
        proc = _import_process(server.url, big)
        try:
            _wait_for_first_batch(client, proc)
            proc.terminate()
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert "Traceback" not in out + err
        assert err.strip().splitlines()[-1].startswith("error: import interrupted"), err
        assert client.get("alpr:hl:NCIC:lock") is None
        assert version_keys(client, HotlistSource.NCIC) == {"v1"}
        assert [e.entry_id for e in HotlistStore(client).lookup("HOT123")] == ["N1"]
        done = _import_in_process(server.url, retry)
        assert done.exit_code == 0, done.output
        assert "NCIC: version 3 live with 3 entries" in done.stdout, done.stdout


@pytest.mark.parametrize("kind", ["hung", "dead"])
def test_an_import_whose_redis_fails_right_after_the_switch_over_is_live_with_its_report(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: `alpr hotlist import` of 3 NCIC records replacing a 2-entry list, the Redis
    # (AOF) hung or dead from the moment the switch-over has run (the flip script
    # answered) until the command ends. Must hold, within the deadline: exit 0 (not 2:
    # the list did change), stdout says version 2 is live with its 3 new plates counted,
    # every stderr line a one-line warning about cleanup (none about the report: the
    # switch-over saved it), no error line, no traceback; once Redis is back, version 2
    # serves the new entries and status shows its report.
    new = _ncic_file(tmp_path / "ncic.txt", 3, "NW")
    with LocalRedis(appendonly=True) as server:
        HotlistStore(server.client()).replace_source(
            HotlistSource.NCIC, [entry("HOT123", "N1"), entry("HOT456", "N2")])
        with outage_after_switch_over(monkeypatch, server, kind):
            result = within_deadline(lambda: _import_in_process(server.url, new))
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert result.stdout.startswith("NCIC: version 2 live with 3 entries (3 new plates;"), \
            result.stdout
        lines = result.stderr.strip().splitlines()
        assert all(line.startswith("warning: hotlist NCIC: could not ") for line in lines), lines
        assert not [line for line in lines if "report" in line], lines
        store = HotlistStore(server.client())
        assert [e.plate for e in store.lookup("NW00001")] == ["NW00001"]
        assert store.lookup("HOT123") == []
        status = store.status()[HotlistSource.NCIC]
        assert status.version == 2
        assert status.report is not None
        assert (status.report["version"], status.report["rows"]) == (2, 3), status.report


def test_hotlist_watch_retries_a_drop_a_hung_redis_could_not_take(
    hotlist_redis: LocalRedis, tmp_path: Path,
) -> None:
    # Fed: one settled NCIC file in the drop folder, `watch --once` while Redis is
    # frozen. Must hold: the poll ends within the deadline with the file marked for retry
    # (not failed), and the next poll, with Redis back, imports it.
    drop = tmp_path / "ncic-0600.txt"
    rows = [format_record("V", f"WAT{n:04d}", "CO", record_id=f"{n:09d}CO0000000")
            for n in range(3)]
    drop.write_text("\n".join(["NCIC LPR EXTRACT 202401150600", *rows]) + "\n",
                    encoding="latin-1")
    args = ["hotlist", "watch", str(tmp_path), "-s", "ncic", "--once", "--settle", "0",
            "--no-events", "--redis", hotlist_redis.url]
    with hotlist_redis.paused():
        result = within_deadline(lambda: CliRunner().invoke(app, args))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ncic-0600.txt: retry ("), result.stdout
    assert "Timeout" in result.stdout
    assert CliRunner().invoke(app, args).stdout == "ncic-0600.txt: imported\n"
    assert not CliRunner().invoke(app, args).stdout  # taken: nothing left to retry


def test_safeguards_command_on_a_hung_data_redis_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: `alpr agency list` with the audit Redis answering and the data Redis frozen.
    # Must hold: exit 2 with one line, no traceback, within the deadline;
    # the audit trail is intact after.
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit:
        build_stack(data.client(), audit.client())  # agencies, users, audit records
        monkeypatch.setenv("ALPR_SG_REDIS_URL", data.url)
        monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", audit.url)
        monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", data.url)
        monkeypatch.delenv("ALPR_SG_POLICY_FILE", raising=False)
        with data.paused():
            result = within_deadline(lambda: CliRunner().invoke(app, ["agency", "list"]))
        # The start-up check that the data Redis is not the audit's server asks it
        # first, so the hang is caught there: one line, exit 2.
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr.startswith("cannot start: Timeout"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stdout == ""
        assert AuditLog(audit.client()).verify().ok


def _landed(check: Callable[[], bool], wait_s: float = 2.0) -> bool:
    """Whether check() turns true within wait_s (a command a thawed Redis still runs)."""
    deadline = time.monotonic() + wait_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def assert_write_ahead(new: list[AuditRecord], actor: str, action: str) -> AuditRecord:
    """`new` is the write-ahead request by `actor`, then its outcome_unknown naming it,
    and nothing else (no outcome claims success)."""
    assert [(r.actor, r.action, r.decision) for r in new] == [
        (actor, action, REQUESTED), (actor, action, OUTCOME_UNKNOWN)], new
    assert new[1].details["request_seq"] == new[0].seq
    assert "Timeout" in new[1].details["error"]
    return new[0]


def test_admin_change_timed_out_on_a_hung_data_redis_is_audited_before_it_can_land(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: `alpr agency disable aurora-co-pd` (as the test admin) with the audit Redis
    # answering and the data Redis frozen just as the change (its HSET) is sent; thawed
    # once the command has ended. Must hold: exit 2 with one line; whether or not the
    # thawed Redis then applied the change, the trail holds the operator's `requested`
    # agency_disable for that agency, written before the change, and a follow-up
    # `failed:outcome_unknown` naming it; the chain verifies. (Before, the change landed
    # after the exit 2 with no audit record at all.)
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit, \
            contextlib.ExitStack() as frozen:
        stack = build_stack(data.client(), audit.client())
        monkeypatch.setenv("ALPR_SG_REDIS_URL", data.url)
        monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", audit.url)
        monkeypatch.setenv("ALPR_SG_HOTLIST_REDIS_URL", data.url)
        monkeypatch.delenv("ALPR_SG_POLICY_FILE", raising=False)
        hset = redis.Redis.hset

        def freeze_then_hset(self: redis.Redis, *args: Any, **kwargs: Any) -> Any:
            if self.connection_pool.connection_kwargs.get("port") == data.port:
                frozen.enter_context(data.paused())
            return hset(self, *args, **kwargs)

        monkeypatch.setattr(redis.Redis, "hset", freeze_then_hset)
        before = stack.sg.audit.head().seq
        try:
            result = within_deadline(lambda: CliRunner().invoke(
                app, ["agency", "disable", MOU_ID]))
        finally:
            frozen.close()  # thaw
            monkeypatch.setattr(redis.Redis, "hset", hset)
        assert_one_clear_line(result)
        landed = _landed(lambda: not stack.sg.access.agency(MOU_ID).enabled)
        request = assert_write_ahead(list(stack.sg.audit.records())[before:], "admin:root",
                                     "agency_disable")
        assert (request.agency, request.details["agency_id"]) == (MOU_ID, MOU_ID)
        assert stack.sg.audit.verify().ok
        print(f"agency_disable landed after the timeout: {landed}")


# --- API --------------------------------------------------------------------------------


def _api(data: LocalRedis, audit: LocalRedis) -> tuple[TestClient, Stack]:
    """The API on the clients `alpr serve` builds from settings, with seeded users."""
    sg = Safeguards.build(SafeguardSettings(redis_url=data.url, audit_redis_url=audit.url,
                                            hotlist_redis_url=data.url))
    stack = build_stack(sg.data, sg.audit.client)
    return TestClient(create_app(stack.sg)), stack


def test_api_search_on_a_hung_data_redis_is_503() -> None:
    # Fed: a valid search while the data Redis (users, reads) is frozen. Must hold: 503
    # `redis_unavailable` within the deadline, no results; searches work again once it
    # answers, and the audit trail is intact.
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit:
        http, stack = _api(data, audit)
        with data.paused():
            res = within_deadline(lambda: http.post("/search", json=SEARCH,
                                                    headers=stack.auth("det")))
            health = within_deadline(lambda: http.get("/healthz"))
        assert (res.status_code, res.json()["error"]) == (503, "redis_unavailable")
        assert "results" not in res.json()
        assert health.status_code == 503
        assert http.post("/search", json=SEARCH, headers=stack.auth("det")).status_code == 200
        assert stack.sg.audit.verify().ok


def test_api_search_on_a_hung_audit_redis_is_503_and_unaudited_search_never_runs() -> None:
    # Fed: a valid search while the audit Redis is frozen. Must hold: 503
    # `audit_unavailable` within the deadline (as for a dead audit Redis: nothing runs
    # unaudited), and no record was written for it once the trail answers again.
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit:
        http, stack = _api(data, audit)
        records = len(list(stack.sg.audit.records()))
        with audit.paused():
            res = within_deadline(lambda: http.post("/search", json=SEARCH,
                                                    headers=stack.auth("det")))
        assert (res.status_code, res.json()["error"]) == (503, "audit_unavailable")
        assert "results" not in res.json()
        assert len(list(stack.sg.audit.records())) == records
        assert stack.sg.audit.verify().ok


def test_api_verification_timed_out_on_a_hung_data_redis_is_audited_before_it_can_land(
) -> None:
    # Fed: a dispatcher's valid verification of a stored alert, the data Redis frozen
    # just as the verification is written (after login and the alert's read), thawed
    # once the API has answered. Must hold: 503 `redis_unavailable` within the deadline;
    # whether or not the thawed Redis then stored the verification, the trail holds
    # `disp`'s `requested` alert_verification of that alert, written before it, and a
    # follow-up `failed:outcome_unknown` naming it (no `verified` record, nothing
    # counted); the chain verifies. (Before, the verification landed after the 503 with
    # no audit record at all.)
    body = {"outcome": "verified", "check_system": "NCIC", "check_result": "confirmed_active",
            "image_matches": True}
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit, \
            contextlib.ExitStack() as frozen:
        http, stack = _api(data, audit)
        alert = make_alert(make_read("STO123"), make_entry("STO123", "NCIC-778"))
        stack.sg.alerts.put(alert)
        store = stack.sg.alerts
        record_verification = store.record_verification

        def freeze_then_record(*args: Any, **kwargs: Any) -> bool:
            frozen.enter_context(data.paused())
            return record_verification(*args, **kwargs)

        store.record_verification = freeze_then_record  # type: ignore[method-assign]
        before = stack.sg.audit.head().seq
        try:
            res = within_deadline(lambda: http.post(
                f"/alerts/{alert.alert_id}/verification", json=body,
                headers=stack.auth("disp")))
        finally:
            frozen.close()  # thaw
            del store.record_verification
        assert (res.status_code, res.json()["error"]) == (503, "redis_unavailable")
        landed = _landed(lambda: store.verification(alert.alert_id) is not None)
        request = assert_write_ahead(list(stack.sg.audit.records())[before:], "disp",
                                     "alert_verification")
        assert (request.details["alert_id"], request.details["outcome"],
                request.details["entry_id"]) == (alert.alert_id, "verified", "NCIC-778")
        if landed:
            assert store.verification(alert.alert_id).user_id == "disp"
        assert stack.sg.transparency.report().alerts_verified_last_30_days == 0
        assert stack.sg.audit.verify().ok
        print(f"verification landed after the timeout: {landed}")


@contextlib.contextmanager
def outage(server: LocalRedis, kind: str) -> Iterator[None]:
    """The server frozen ("hung") or stopped ("dead") for the block, back after it."""
    if kind == "hung":
        with server.paused():
            yield
        return
    server.stop()
    try:
        yield
    finally:
        server.start()


@contextlib.contextmanager
def outage_after_switch_over(
    monkeypatch: pytest.MonkeyPatch, server: LocalRedis, kind: str = "hung"
) -> Iterator[None]:
    """`server` hung or dead (see outage) from the moment an import's switch-over script
    has answered until the block ends; then Redis is back and scripts run as before."""
    call = Script.__call__
    with contextlib.ExitStack() as cut:

        def flip_then_outage(self: Script, keys: Any = None, args: Any = None,
                             client: Any = None) -> Any:
            reply = call(self, keys, args, client)
            if self.script == hotlists.store._FLIP:
                cut.enter_context(outage(server, kind))
            return reply

        monkeypatch.setattr(Script, "__call__", flip_then_outage)
        try:
            yield
        finally:
            monkeypatch.setattr(Script, "__call__", call)


@pytest.mark.parametrize("kind", ["hung", "dead"])
def test_api_refusals_of_unread_bodies_on_a_data_redis_outage_are_never_500(kind: str) -> None:
    # Fed: with the data Redis (users) hung or dead and the audit Redis answering, a
    # search body over the 16 KiB limit and a malformed one, each with a valid token.
    # Must hold, within the deadline, never 500: the oversized body is 413
    # `request_too_large` as for everyone, audited without the login (it could not be
    # checked: noted, with the user the token claims); the malformed one is 503
    # `redis_unavailable`, as a valid search would be (a bad login would win over 422,
    # and it cannot be checked), not audited.
    with LocalRedis() as data, LocalRedis(appendonly=True) as audit:
        api, stack = _api(data, audit)
        http = TestClient(api.app, raise_server_exceptions=False)
        records = len(list(stack.sg.audit.records()))
        huge = {**SEARCH, "reason": "x" * 20_000}
        malformed = {**stack.auth("det"), "Content-Type": "application/json"}
        with outage(data, kind):
            too_large = within_deadline(lambda: http.post("/search", json=huge,
                                                          headers=stack.auth("det")))
            invalid = within_deadline(lambda: http.post("/search", content=b"{not json",
                                                        headers=malformed))
        assert too_large.status_code == 413, too_large.text
        assert too_large.json()["error"] == "request_too_large"
        assert (invalid.status_code, invalid.json()) == (503, {
            "error": "redis_unavailable", "audit_seq": None,
            "detail": "a Redis the API needs is unreachable or did not answer in time"})
        [record] = list(stack.sg.audit.records())[records:]
        assert record.seq == too_large.json()["audit_seq"]
        assert (record.decision, record.actor) == ("refused:request_too_large", "anonymous")
        assert record.details["authentication"] == "redis_unavailable"
        assert record.details["claimed_user"] == "det"
        assert stack.sg.audit.verify().ok


# --- flow -------------------------------------------------------------------------------


def _failures() -> float:
    return metrics.HOTLIST_LOOKUP_FAILURES._value.get()


def test_flow_hotlist_join_publishes_reads_while_redis_hangs_and_parks_the_joins(
    hotlist_redis: LocalRedis, caplog: pytest.LogCaptureFixture,
) -> None:
    # Fed: one batch of two alertable reads, HOT123 (listed) and ZZZ999, to join_batch
    # (the flow's hotlist_join step) while the hotlist Redis is frozen, then a second
    # batch at once. Must hold: the first batch waits one timeout at most, the second
    # none (the join does not ask a Redis that just failed); both batches' reads come out
    # at once (cameras never stop for Redis), their joins parked, the failure counted;
    # once Redis answers, the parked joins give HOT123's alert (ParkedJoins, the flow's
    # parked_joins step).
    settings = Settings(redis_url=hotlist_redis.url, metrics_port=0,
                        redis_socket_timeout_s=TIMEOUT_S)
    reads = [make_read("HOT123"), make_read("ZZZ999", camera="cam-2")]
    later = [make_read("HOT456", camera="cam-3")]
    out: list[Any] = []
    before = _failures()
    caplog.set_level(logging.ERROR, logger="flows.hotlist_join")
    with hotlist_redis.paused():
        out.extend(within_deadline(lambda: join_batch(settings, reads)))
        started = time.monotonic()
        out.extend(join_batch(settings, later))
        assert time.monotonic() - started < TIMEOUT_S / 2, "the join waited on Redis again"
    assert _failures() == before + 1
    assert any("Timeout" in r.getMessage() for r in caplog.records)
    published = [(r.topic, r.key) for r in out if isinstance(r, OutRecord)]
    assert published == [(settings.topics.reads, b"cam-1"), (settings.topics.reads, b"cam-2"),
                         (settings.topics.reads, b"cam-3")]
    owed = [p for p in out if isinstance(p, Parked)]
    assert [p.read.plate for p in owed] == ["HOT123", "ZZZ999", "HOT456"]

    parked = ParkedJoins(settings, None)
    for p in owed:
        parked.on_item(p)
    alerts: list[Any] = []
    deadline = time.monotonic() + DEADLINE_S + 5  # the pause before the next try
    while parked.parked and time.monotonic() < deadline:
        alerts.extend(parked.on_notify()[0])
        time.sleep(0.1)
    assert parked.parked == []
    assert [(r.topic, r.key) for r in alerts] == [(settings.topics.alerts, b"cam-1"),
                                                  (settings.topics.alerts, b"cam-3")]
    assert [json.loads(a.value)["entry"]["entry_id"] for a in alerts] == ["N1", "N2"]


def test_an_import_whose_switch_over_reply_is_lost_says_the_outcome_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: `alpr hotlist import` of 3 NCIC records replacing a 2-entry list, the Redis
    # frozen just as the switch-over (the flip script) is sent, so its reply never comes,
    # and frozen until the command ends. Must hold, within the deadline: exit 4 (not 1:
    # the command cannot know whether the new list is live), one error line saying the
    # outcome is unknown and to check `alpr hotlist status`, never "unchanged", no
    # traceback; once Redis is thawed it runs the flip it had received, so version 2
    # serves: "unchanged" (what the command said before) would have been false.
    new = _ncic_file(tmp_path / "ncic.txt", 3, "NW")
    with LocalRedis() as server, contextlib.ExitStack() as frozen:
        HotlistStore(server.client()).replace_source(
            HotlistSource.NCIC, [entry("HOT123", "N1"), entry("HOT456", "N2")])
        call = Script.__call__

        def freeze_then_flip(self: Script, keys: Any = None, args: Any = None,
                             client: Any = None) -> Any:
            if self.script == hotlists.store._FLIP:
                frozen.enter_context(server.paused())
            return call(self, keys, args, client)

        monkeypatch.setattr(Script, "__call__", freeze_then_flip)
        try:
            result = within_deadline(lambda: _import_in_process(server.url, new))
        finally:
            frozen.close()  # thaw: Redis runs what it was sent, the flip first
            monkeypatch.setattr(Script, "__call__", call)
        assert result.exit_code == 4, result.output
        assert "Traceback" not in result.output and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        [error] = [line for line in lines if line.startswith("error:")]
        assert REDIS_DOWN.match(error) and " (outcome unknown: " in error, error
        assert "version 2 may or may not be live" in error, error
        assert "alpr hotlist status" in error, error
        assert "unchanged" not in result.stderr, result.stderr
        assert all(line.startswith("warning: hotlist NCIC: ") for line in lines
                   if line != error), lines
        store = HotlistStore(server.client())
        assert _landed(lambda: store.status()[HotlistSource.NCIC].version == 2)
        assert [e.plate for e in store.lookup("NW00001")] == ["NW00001"]


def test_status_after_an_import_cut_off_right_after_its_switch_over_shows_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: a Redis serving a 2-entry NCIC list; `alpr hotlist import` of an empty NCIC
    # file (refused: status records a failed attempt); then an import of 3 records with
    # the Redis frozen from the moment its switch-over has answered until the command
    # ends (version 2 live, nothing written after the switch-over); then `alpr hotlist
    # status`. Must hold: status shows version 2 serving with its import report (saved
    # by the switch-over itself), never "report not saved" nor the earlier refusal as
    # "LAST ATTEMPT FAILED" (it is older than the serving version).
    empty = _ncic_file(tmp_path / "empty.txt", 0, "EM")
    new = _ncic_file(tmp_path / "ncic.txt", 3, "NW")
    with LocalRedis() as server:
        HotlistStore(server.client()).replace_source(
            HotlistSource.NCIC, [entry("HOT123", "N1"), entry("HOT456", "N2")])
        refused = _import_in_process(server.url, empty)
        assert refused.exit_code == 1, refused.output
        status = ["hotlist", "status", "--redis", server.url]
        assert "LAST ATTEMPT FAILED" in CliRunner().invoke(app, status).stdout
        with outage_after_switch_over(monkeypatch, server):
            result = within_deadline(lambda: _import_in_process(server.url, new))
        assert result.exit_code == 0, result.output
        assert "report" not in result.stderr, result.stderr
        shown = CliRunner().invoke(app, status)
        assert shown.exit_code == 0, shown.output
        assert shown.stdout.startswith("NCIC: version=2 entries=3 "), shown.stdout
        assert "LAST ATTEMPT FAILED" not in shown.stdout, shown.stdout
        assert f"  last import: {new} rows=3 rejected=0 " in shown.stdout, shown.stdout
        assert "not saved" not in shown.stdout, shown.stdout
        row = json.loads(CliRunner().invoke(app, [*status, "--json"]).stdout)["NCIC"]
        assert (row["last_attempt"]["ok"], row["last_attempt"]["version"]) == (True, 2), row
        assert "report_missing" not in row["last_attempt"], row
        assert (row["report"]["previous_version"], row["report"]["added"]) == (1, 3), row


def test_a_redis_failure_reading_entries_for_the_update_event_is_said_as_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka: str,
    unique_topic: Callable[[str], str],
) -> None:
    # Fed: `alpr hotlist import` of 3 NCIC records into an empty source, with a real
    # broker for the hotlist-update event, the Redis frozen from the moment the
    # switch-over has answered until the command ends (building the event reads the new
    # entries back from Redis). Must hold, within the deadline: stdout says version 1 is
    # live; exit 2 (Redis failed, as every command says it), not 3 (a Kafka failure);
    # one `error: Redis unavailable` line saying the list is live, the event was not
    # published and what to do, nothing blaming Kafka; no event on the topic; once Redis
    # is back, version 1 serves the new entries, and the advised `alpr hotlist republish`
    # publishes the event naming them.
    topic = unique_topic("hotlist-updates")
    monkeypatch.setenv("ALPR_TOPIC_HOTLIST_UPDATES", topic)
    new = _ncic_file(tmp_path / "ncic.txt", 3, "NW")
    try:
        with LocalRedis() as server:
            with outage_after_switch_over(monkeypatch, server):
                result = within_deadline(lambda: CliRunner().invoke(app, [
                    "hotlist", "import", str(new), "-s", "ncic", "--redis", server.url,
                    "--kafka", kafka]))
            assert result.exit_code == 2, result.output
            assert "Traceback" not in result.output
            assert result.stdout.startswith("NCIC: version 1 live with 3 entries"), result.stdout
            lines = result.stderr.strip().splitlines()
            [error] = [line for line in lines if line.startswith("error:")]
            assert error.startswith("error: Redis unavailable: "), error
            assert "version 1 is live" in error and "event was not published" in error, error
            assert "run `alpr hotlist republish --source ncic` once Redis answers" in error, \
                error
            assert "Kafka" not in result.stderr and "WARNING" not in result.stderr, lines
            assert all(line.startswith("warning: hotlist NCIC: ") for line in lines
                       if line != error), lines
            assert read_all(kafka, topic, timeout=5, idle=1.0) == []
            store = HotlistStore(server.client())
            assert [e.plate for e in store.lookup("NW00001")] == ["NW00001"]
            # What the error line advises works: the republished event names the 3 entries.
            again = CliRunner().invoke(app, ["hotlist", "republish", "-s", "ncic", "--redis",
                                             server.url, "--kafka", kafka])
            assert again.exit_code == 0, again.output
            [record] = read_all(kafka, topic, expect=1, timeout=30, idle=1.0)
            assert (record.json()["version"],
                    sorted(e["plate"] for e in record.json()["added"])) == (
                1, ["NW00000", "NW00001", "NW00002"])
    finally:
        delete_topics(kafka, [topic])


@contextlib.contextmanager
def outage_after_alert_changes(
    monkeypatch: pytest.MonkeyPatch, server: LocalRedis, kind: str, changes: int
) -> Iterator[None]:
    """`server` hung or dead (see outage) from the moment `changes` single-entry writes
    (upsert or remove scripts: an NCMEC import's alerts and cancellations) have answered
    (0: just before the first is sent) until the block ends."""
    call = Script.__call__
    answered = 0
    with contextlib.ExitStack() as cut:

        def change_then_outage(self: Script, keys: Any = None, args: Any = None,
                               client: Any = None) -> Any:
            nonlocal answered
            single = self.script in (hotlists.store._UPSERT, hotlists.store._REMOVE)
            if single and changes == 0 and answered == 0:
                answered = -1  # once
                cut.enter_context(outage(server, kind))
            reply = call(self, keys, args, client)
            if single and answered >= 0:
                answered += 1
                if answered == changes:
                    cut.enter_context(outage(server, kind))
            return reply

        monkeypatch.setattr(Script, "__call__", change_then_outage)
        try:
            yield
        finally:
            monkeypatch.setattr(Script, "__call__", call)


def _amber_file(path: Path, alerts: list[tuple[str, str]], cancel: list[tuple[str, str]]) -> Path:
    lines = [json.dumps({"alert_id": a, "plate": p, "state": "CA"}) for a, p in alerts]
    lines += [json.dumps({"alert_id": a, "plate": p, "status": "cancelled"}) for a, p in cancel]
    path.write_text("\n".join(lines) + "\n")
    return path


AMBER = [("AMB-1", "7KQX211"), ("AMB-2", "7KQX212"), ("AMB-3", "7KQX213"),
         ("AMB-4", "7KQX214")]


@pytest.mark.parametrize(("kind", "changes"), [("hung", 2), ("dead", 2), ("hung", 0),
                                               ("hung", 5)])
def test_an_amber_import_cut_off_part_way_says_what_is_live_and_can_be_rerun(
    kind: str, changes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fed: a Redis (AOF) serving one Amber alert, AMB-0; `alpr hotlist import -s ncmec`
    # of a drop adding AMB-1..AMB-4 and cancelling AMB-0 (five single writes, in that
    # order: NCMEC alerts go live one by one, there is no switch-over), the Redis hung or
    # dead once `changes` of them have answered (0: before the first), until the command
    # ends; then, with Redis back, the same import again. Must hold, within the deadline,
    # never "unchanged" (what it said before, with alerts already live): on stdout how
    # many alerts were added and which; one `error: Redis unavailable` line naming the
    # alert in flight as maybe live and the rest as not done (exit 4, partial), or, when
    # all five went through and only reading the list back failed, saying every alert is
    # live (exit 2); either way no event published, and the advice to check status and
    # import the same file again. Once Redis is back the alerts said added serve, those
    # not done do not; the re-run completes it (exit 0): AMB-1..AMB-4 once each, AMB-0
    # gone.
    drop = _amber_file(tmp_path / "amber.json", AMBER, [("AMB-0", "7KQX210")])
    args = ["hotlist", "import", str(drop), "-s", "ncmec", "--no-events"]
    with LocalRedis(appendonly=True) as server:
        HotlistStore(server.client()).upsert(
            entry("7KQX210", "AMB-0", HotlistSource.NCMEC, priority=1))
        with outage_after_alert_changes(monkeypatch, server, kind, changes):
            result = within_deadline(lambda: CliRunner().invoke(
                app, [*args, "--redis", server.url]))
        assert "Traceback" not in result.output
        assert "unchanged" not in result.output, result.output
        added = [a for a, _ in AMBER[:changes]]
        assert result.stdout == (
            f"NCMEC: {len(added)} of 4 alert(s) added"
            + (f" ({', '.join(added)})" if added else "")
            + f", {int(changes == 5)} of 1 cancellation(s) done"
            + (" (cancel AMB-0)" if changes == 5 else "") + "\n"), result.stdout
        [error] = result.stderr.strip().splitlines()
        assert error.startswith("error: Redis unavailable: "), error
        assert "no hotlist-update event was published" in error, error
        assert f"import the same file again (`alpr hotlist import {drop} --source ncmec`)" \
            in error, error
        if changes == 5:
            assert result.exit_code == 2, result.output
            assert "every alert of the file is live and every cancellation done" in error
        else:
            assert result.exit_code == 4, result.output
            doubt, *rest = ([a for a, _ in AMBER] + ["cancel AMB-0"])[changes:]
            assert "(outcome partial: " in error, error
            assert f"; {doubt} may or may not be live (sent, not confirmed); " in error, error
            assert f"; not done: {', '.join(rest)}; " in error, error
            assert "Run `alpr hotlist status` once Redis answers" in error, error

        store = HotlistStore(server.client())

        def serving(alert: str, plate: str) -> bool:
            return alert in [e.entry_id for e in store.lookup(plate)]

        for alert, plate in AMBER[:changes]:
            assert serving(alert, plate), alert
        for alert, plate in AMBER[changes + 1:]:
            assert not serving(alert, plate), alert
        if kind == "hung" and changes < 4:  # thawed, it ran the write it had received
            assert _landed(lambda: serving(*AMBER[changes]))
        assert serving("AMB-0", "7KQX210") == (changes < 5)

        again = CliRunner().invoke(app, [*args, "--redis", server.url])
        assert again.exit_code == 0, again.output
        assert again.stdout.startswith("NCMEC: 4 alert(s) added, "), again.stdout
        assert all(serving(a, p) for a, p in AMBER) and not serving("AMB-0", "7KQX210")
        assert store.status()[HotlistSource.NCMEC].entries == 4


def test_an_amber_import_interrupted_part_way_says_which_alerts_are_live(
    tmp_path: Path,
) -> None:
    # Fed: a Redis serving one Amber alert, AMB-0; `alpr hotlist import --source ncmec`,
    # in a real process, of a drop adding 8,000 alerts (AMB-00000..AMB-07999, one write
    # each, live one by one) and cancelling AMB-0 last, sent SIGINT (Ctrl-C) once three of
    # them are live (so at least two are confirmed: the import sends an alert only after
    # the one before it was confirmed and counted; at two live, the second's reply may
    # still be on its way, and it is rightly said "may or may not be live"); then the
    # same import again. Must hold: exit 130 (interrupted), no
    # traceback, never "unchanged" (what it said, although alerts were live); stdout
    # says how many alerts were added and which, and that the cancellation was not done;
    # one `error: import interrupted` line naming the alert in flight as maybe live and
    # the rest as not done, no event published, and the advice to import the same file
    # again. Redis serves what was said: the alerts said added, not those said not done,
    # and still AMB-0. The re-run completes it (exit 0): all 8,000 serve, AMB-0 is gone.
    total = 8000
    alerts = [(f"AMB-{i:05d}", f"AM{i:05d}") for i in range(total)]
    drop = _amber_file(tmp_path / "amber.json", alerts, [("AMB-0", "7KQX210")])
    with LocalRedis() as server:
        client = server.client()
        store = HotlistStore(client)
        store.upsert(entry("7KQX210", "AMB-0", HotlistSource.NCMEC, priority=1))
        proc = subprocess.Popen(
            [sys.executable, "-m", "alpr.cli", "hotlist", "import", str(drop), "--source",
             "ncmec", "--no-events", "--redis", server.url], cwd=ROOT,
            env={**os.environ, "ALPR_REDIS_SOCKET_TIMEOUT_S": str(TIMEOUT_S)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # Ctrl-C as an operator's shell delivers it: a test run started in the
            # background of a non-interactive shell ignores SIGINT, and its children would
            # inherit that and finish all 8,000 (two CI runs here exited 0 that way).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 60
            while int(client.hget("alpr:hl:NCMEC:v1:meta", "count") or 0) < 4:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the import never added an alert"
                time.sleep(0.002)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert "Traceback" not in out + err, err
        assert "unchanged" not in out + err, err
        said = re.fullmatch(rf"NCMEC: (\d+) of {total} alert\(s\) added \((.*)\), "
                            r"0 of 1 cancellation\(s\) done\n", out)
        assert said, out
        added = int(said[1])
        assert 2 <= added < total - 1, out  # part way
        shown = ", ".join(a for a, _ in alerts[:min(added, 10)])
        assert said[2] == shown + (f" and {added - 10} more" if added > 10 else ""), out
        [error] = err.strip().splitlines()
        in_flight, next_one = alerts[added][0], alerts[added + 1][0]
        assert error.startswith("error: import interrupted (outcome partial: "), error
        assert f"; {in_flight} may or may not be live (sent, not confirmed); " \
               f"not done: {next_one}, " in error, error
        assert "no hotlist-update event was published" in error, error
        assert f"import the same file again (`alpr hotlist import {drop} --source ncmec`)" \
            in error, error

        def serving(alert: str, plate: str) -> bool:
            return alert in [e.entry_id for e in store.lookup(plate)]

        assert all(serving(*a) for a in alerts[:added])
        assert not any(serving(*a) for a in alerts[added + 1:])
        assert serving("AMB-0", "7KQX210")
        live = store.status()[HotlistSource.NCMEC].entries
        assert live in (1 + added, 2 + added), live  # the one in flight ran, or not

        again = _amber_import(server.url, drop)
        assert again.exit_code == 0, again.output
        assert again.stdout.startswith(f"NCMEC: {total} alert(s) added, 1 cancelled"), \
            again.stdout
        assert store.status()[HotlistSource.NCMEC].entries == total
        assert not serving("AMB-0", "7KQX210") and all(serving(*a) for a in alerts[-3:])


def _amber_import(url: str, file: Path, *more: str) -> Result:
    return CliRunner().invoke(app, ["hotlist", "import", str(file), "--source", "ncmec",
                                    "--no-events", "--redis", url, *more])


@pytest.mark.parametrize("kind", ["dead", "hung"])
def test_the_rerun_of_a_cut_off_amber_import_announces_every_cancellation(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka: str,
    unique_topic: Callable[[str], str],
) -> None:
    # Fed: a Redis (AOF) serving Amber alerts AMB-0 and AMB-9; `alpr hotlist import -s
    # ncmec`, publishing to a real broker, of a drop adding AMB-1 and AMB-2 and
    # cancelling AMB-0 then AMB-9, the Redis dead or hung once 3 changes answered
    # (AMB-0's cancellation went through; hung, AMB-9's was in flight and the thawed
    # Redis runs it); then, Redis back, the same import again. Must hold: the cut-off run
    # publishes nothing; the re-run publishes one event, the one a run never cut off
    # would have: AMB-1 and AMB-2 added, AMB-0 and AMB-9 removed (before, a cancellation
    # already applied was left out, the alert being gone when the re-run cancelled it,
    # so caches and historical hits never learnt of it).
    topic = unique_topic("hotlist-updates")
    monkeypatch.setenv("ALPR_TOPIC_HOTLIST_UPDATES", topic)
    drop = _amber_file(tmp_path / "amber.json", AMBER[:2],
                       [("AMB-0", "7KQX210"), ("AMB-9", "7KQX219")])
    args = ["hotlist", "import", str(drop), "-s", "ncmec", "--kafka", kafka]
    try:
        with LocalRedis(appendonly=True) as server:
            store = HotlistStore(server.client())
            for alert, plate in [("AMB-0", "7KQX210"), ("AMB-9", "7KQX219")]:
                store.upsert(entry(plate, alert, HotlistSource.NCMEC, priority=1))
            with outage_after_alert_changes(monkeypatch, server, kind, 3):
                cut = within_deadline(lambda: CliRunner().invoke(
                    app, [*args, "--redis", server.url]))
            assert cut.exit_code == 4, cut.output
            assert store.lookup("7KQX210") == []  # AMB-0 cancelled
            if kind == "hung":  # AMB-9 cancelled too, once thawed
                assert _landed(lambda: store.lookup("7KQX219") == [])
            else:
                assert [e.entry_id for e in store.lookup("7KQX219")] == ["AMB-9"]

            again = CliRunner().invoke(app, [*args, "--redis", server.url])
            assert again.exit_code == 0, again.output
            [record] = read_all(kafka, topic, expect=1, timeout=30, idle=1.0)
            event = record.json()
            assert sorted(e["entry_id"] for e in event["added"]) == ["AMB-1", "AMB-2"]
            assert sorted(event["removed"], key=lambda r: r["entry_id"]) == [
                {"plate": "7KQX210", "entry_id": "AMB-0"},
                {"plate": "7KQX219", "entry_id": "AMB-9"}], event["removed"]
    finally:
        delete_topics(kafka, [topic])
