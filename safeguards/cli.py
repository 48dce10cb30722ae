"""`alpr` subcommands of the safeguards: search, audit, agency, user, serve, retention.

Connection settings come from options or the ALPR_SG_* / ALPR_* environment variables
(see safeguards/settings.py). Administrative commands are audited under the operator's
name (`--operator`, default the login name).

Exit codes: 0 done, 1 refused (or a broken audit chain), 2 not done: bad input, a policy
that cannot be read, a Redis or file that cannot be reached (or a Redis that hangs past
ALPR_REDIS_SOCKET_TIMEOUT_S), at start or mid-command; 3 done but not fully audited: an
agency/user change made (and in effect, its output, a token say, printed as usual) whose
outcome record could not be written; the trail holds its write-ahead `requested` record.
Every exit 2 is one line on stderr, never a traceback (`_FailsClearly`).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import redis
import typer
from pydantic import ValidationError
from typer.core import TyperCommand, TyperGroup

from kernel.cli_errors import FailsClearly, one_line
from safeguards.access import AgencyKind, RegistryError, Role
from safeguards.audit import Anchor, AuditError, Metric
from safeguards.gate import Refusal
from safeguards.head_log import PublishedHeads
from safeguards.policy import PolicyError
from safeguards.search import SearchRequest
from safeguards.settings import SafeguardSettings
from safeguards.wiring import Safeguards

__all__ = ["register"]

RedisOpt = Annotated[str | None, typer.Option(
    "--redis", envvar=["ALPR_SG_REDIS_URL", "ALPR_REDIS_URL"],
    help="Redis with reads, alerts, agencies and users.")]
AuditOpt = Annotated[str | None, typer.Option(
    "--audit-redis", envvar="ALPR_SG_AUDIT_REDIS_URL",
    help="Redis with the audit trail (appendonly yes, appendfsync always).")]
PolicyOpt = Annotated[Path | None, typer.Option(
    "--policy", envvar="ALPR_SG_POLICY_FILE", help="Policy YAML (default: the built-in one).")]
OperatorOpt = Annotated[str | None, typer.Option(
    help="Who is making the change (audited). Default: the login name.")]
AdminOpt = Annotated[Path | None, typer.Option(
    "--admin-token-file", envvar="ALPR_ADMIN_TOKEN_FILE",
    help="File holding your admin token from `alpr admin add` ('-': read it from stdin).")]
TotpOpt = Annotated[str | None, typer.Option(
    "--totp", envvar="ALPR_ADMIN_TOTP", help="The current code of your authenticator.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

class _FailsClearly(FailsClearly):
    """The one place the safeguards' commands turn an outage into one line on stderr and
    exit 2 (kernel.cli_errors), instead of a traceback. Mixed into the click classes of
    every group and top-level command below."""

    # What an operator cannot fix by retyping the command: a Redis or the audit trail
    # unreachable or hung (also when it goes away mid-command), a policy that cannot be
    # read (or its change audited), a file that cannot be written.
    unavailable = (redis.RedisError, AuditError, PolicyError, OSError)


class _Group(_FailsClearly, TyperGroup):
    pass


class _Command(_FailsClearly, TyperCommand):
    pass


audit_app = typer.Typer(help="The audit trail: verify the hash chain, export CSV.",
                        no_args_is_help=True, cls=_Group)
agency_app = typer.Typer(help="Agencies allowed to search (owner and MOU agencies).",
                         no_args_is_help=True, cls=_Group)
user_app = typer.Typer(help="Users and their tokens.", no_args_is_help=True, cls=_Group)
admin_app = typer.Typer(help="Administrators (token + TOTP) and the record key, both kept "
                        "outside Redis.", no_args_is_help=True, cls=_Group)
retention_app = typer.Typer(help="Retained reads: Kafka consumers and topic retention.",
                            no_args_is_help=True, cls=_Group)


def _settings(redis_url: str | None, audit_url: str | None,
              policy: Path | None) -> SafeguardSettings:
    overrides: dict[str, Any] = {}
    if redis_url:
        overrides["redis_url"] = redis_url
    if audit_url:
        overrides["audit_redis_url"] = audit_url
    if policy:
        overrides["policy_file"] = policy
    return SafeguardSettings(**overrides)


def _services(redis_url: str | None, audit_url: str | None, policy: Path | None
              ) -> Safeguards:
    # A refused policy, a malformed Redis URL, an audit Redis that is not durable or a
    # Redis that cannot be reached: one clear line and exit 2, nothing done.
    try:
        return Safeguards.build(_settings(redis_url, audit_url, policy))
    except (ValueError, AuditError, redis.RedisError) as exc:
        typer.echo(f"cannot start: {one_line(exc)}", err=True)
        raise typer.Exit(2) from exc


def _operator(name: str | None) -> str:
    return f"cli:{name or getpass.getuser()}"


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=1, default=str))


# --- search ----------------------------------------------------------------------------


def search_cmd(
    ctx: typer.Context,
    plate: Annotated[str, typer.Option(help="Plate or pattern: A-Z 0-9 * ?")],
    case: Annotated[str, typer.Option("--case", help="Case number (required).")],
    reason: Annotated[str, typer.Option(help="Why the search is needed (required).")],
    offence: Annotated[str, typer.Option(help="Permitted offence category id.")],
    token_file: Annotated[Path | None, typer.Option(
        envvar="ALPR_TOKEN_FILE", help="File holding your token ('-': read it from stdin); "
        "or set ALPR_TOKEN. Never on the command line, where `ps` shows it.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="ALPR_TOKEN", help="Your token, from the ALPR_TOKEN variable only: on the "
        "command line, where `ps` shows it, it is refused.")] = None,
    start: Annotated[datetime | None, typer.Option(help="Window start (UTC).")] = None,
    end: Annotated[datetime | None, typer.Option(help="Window end (UTC).")] = None,
    camera: Annotated[list[str] | None, typer.Option(help="Only this camera (repeat).")]
    = None,
    limit: Annotated[int | None, typer.Option(help="At most this many results.")] = None,
    as_json: JsonOpt = False,
    redis_url: RedisOpt = None,
    audit_url: AuditOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Search retained reads (the same guarded, audited search as POST /search)."""
    source = ctx.get_parameter_source("token")
    if token is not None and source is not None and source.name == "COMMANDLINE":
        typer.echo("--token: a token on the command line is visible to every local user "
                   "(ps); use --token-file FILE, --token-file - (stdin) or ALPR_TOKEN",
                   err=True)
        raise typer.Exit(2)
    if token_file is not None:
        token = _read_secret(token_file)
    sg = _services(redis_url, audit_url, policy)
    fields = {"plate": plate, "case_number": case, "reason": reason, "offence": offence,
              "start": start.replace(tzinfo=start.tzinfo or UTC) if start else None,
              "end": end.replace(tzinfo=end.tzinfo or UTC) if end else None,
              "cameras": camera or [], "limit": limit}
    try:
        request = SearchRequest(**fields)
        result = sg.search.search(token, request, channel="cli", client=_operator(None))
    except ValidationError as exc:
        # Audited in the shape of any search attempt (the CSV export reads it so).
        query = {k: v if v is None or isinstance(v, list | int) else str(v)
                 for k, v in fields.items()
                 if k not in ("case_number", "reason", "offence")}
        first = exc.errors()[0]
        refusal = sg.gate.refuse_unparsed(
            token, action="search", code="invalid_request", status=422,
            message=f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg')}",
            metrics=(Metric.SEARCH_REFUSED,),
            details={"query": query, "case_number": case, "reason": reason,
                     "offence": offence, "channel": "cli", "client": _operator(None)})
        _refused(refusal)
    except Refusal as refusal:
        _refused(refusal)
    if as_json:
        typer.echo(result.model_dump_json(indent=1))
        return
    for hit in result.results:
        typer.echo(f"{hit.first_seen.isoformat(timespec='seconds')}  {hit.plate:<10} "
                   f"{hit.camera_id:<16} conf={hit.confidence:.2f}  read={hit.read_id}")
    more = " (truncated: narrow the search)" if result.truncated else ""
    typer.echo(f"{result.count} result(s){more}; audit record {result.audit_seq}")


def _refused(refusal: Refusal) -> None:
    typer.echo(f"refused ({refusal.code}): {refusal.message} [audit record "
               f"{refusal.audit_seq}]", err=True)
    raise typer.Exit(1)


# --- audit -----------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[list[str] | None, typer.Option(
        help="A head kept outside (`alpr audit head`: 'seq=N hash=H'); that record must "
        "still be there, unchanged. Repeatable.")] = None,
    heads_file: Annotated[Path | None, typer.Option(
        help="Published heads to check (default: ALPR_SG_AUDIT_HEAD_FILE): every one "
        "must still be in the trail, unchanged.")] = None,
    audit_url: AuditOpt = None, redis_url: RedisOpt = None, as_json: JsonOpt = False,
) -> None:
    """Check the hash chain: report edited, reordered or deleted records (exit 1), and
    every published head (a wiped or replaced trail is caught)."""
    try:
        anchors = [Anchor.parse(a) for a in anchor or []]
    except ValueError as exc:
        typer.echo(f"--anchor: {exc}", err=True)
        raise typer.Exit(2) from exc
    heads_file = heads_file or _settings(redis_url, audit_url, None).audit_head_file
    published: list[Anchor] = []
    if heads_file is not None:
        try:
            published = PublishedHeads(heads_file).anchors()
        except (OSError, ValueError) as exc:
            typer.echo(f"cannot read the published audit heads: {one_line(exc)}", err=True)
            raise typer.Exit(2) from exc
    sg = _services(redis_url, audit_url, None)
    report = sg.audit.verify([*anchors, *published])
    head = sg.audit.head()
    if as_json:
        _echo_json({"ok": report.ok, "records": report.records, "head_seq": head.seq,
                    "head_hash": head.hash, "published_heads": len(published),
                    "issues": [asdict(i) for i in report.issues]})
    elif report.ok:
        against = f", {len(published)} published heads found" if heads_file else (
            "; no published heads (ALPR_SG_AUDIT_HEAD_FILE unset): a wiped or replaced "
            "trail cannot be told")
        typer.echo(f"OK: {report.records} records, chain intact{against}; head "
                   f"seq={head.seq} hash={head.hash}")
    else:
        first = report.first
        assert first is not None
        typer.echo(f"BROKEN: first at seq {first.seq}: {first.kind} ({first.detail})")
        for issue in sorted(report.issues, key=lambda i: i.seq):
            typer.echo(f"  seq {issue.seq}: {issue.kind}: {issue.detail}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    since: Annotated[str, typer.Option(help="First day to export, YYYY-MM-DD (UTC).")],
    out: Annotated[Path, typer.Option(help="CSV file to write ('-': stdout).")] = Path("-"),
    audit_url: AuditOpt = None,
    redis_url: RedisOpt = None,
    operator: OperatorOpt = None,
) -> None:
    """Write the audit records since a day as CSV for oversight bodies."""
    try:
        day = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        typer.echo("--since must be YYYY-MM-DD", err=True)
        raise typer.Exit(2) from exc
    sg = _services(redis_url, audit_url, None)
    since_ms = int(day.timestamp() * 1000)
    with _staged(out) as fh:
        rows = sg.audit.export_csv(fh, since_ms)
        head = sg.audit.head()
        sg.audit.append(actor=_operator(operator), agency="-", action="audit_export",
                        decision="allowed", details={"since": since, "rows": rows,
                                                     "out": str(out)})
    typer.echo(f"exported {rows} records since {since}; chain head seq={head.seq} "
               f"hash={head.hash} (keep this with the export)", err=str(out) == "-")


@contextmanager
def _staged(out: Path) -> Iterator[IO[str]]:
    """A temporary file for `out`, published only when the block completes (renamed
    over `out`, or copied to stdout for "-") and dropped if it raises: an export whose
    audit Redis goes away leaves no truncated CSV that looks whole, and none that the
    trail does not show (the block appends the export's record before it ends)."""
    if str(out) == "-":
        with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as tmp:
            yield tmp
            tmp.seek(0)
            shutil.copyfileobj(tmp, sys.stdout)
            sys.stdout.flush()  # the CSV before the summary line on a shared terminal
        return
    try:
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    except OSError as exc:
        typer.echo(f"--out: cannot write {out}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    try:
        with open(fd, "w", newline="", encoding="utf-8") as tmp:
            yield tmp
        os.replace(name, out)
    finally:
        if os.path.exists(name):
            os.unlink(name)


@audit_app.command("head")
def audit_head(audit_url: AuditOpt = None, redis_url: RedisOpt = None) -> None:
    """Print the last record's seq and hash (give it to an oversight body to keep)."""
    head = _services(redis_url, audit_url, None).audit.head()
    typer.echo(f"seq={head.seq} hash={head.hash}")


# --- agencies and users ----------------------------------------------------------------


@agency_app.command("list")
def agency_list(redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                policy: PolicyOpt = None, as_json: JsonOpt = False) -> None:
    """Registered agencies and whether they can search now."""
    sg = _services(redis_url, audit_url, policy)
    rows = sg.access.agencies()
    current = sg.access.policy
    if as_json:
        _echo_json([{**asdict(a), "access": sg.access.allowed(a, current)} for a in rows])
        return
    for a in rows:
        # An enabled entry the policy refuses (off the MOU list, federal) has no access.
        state = ("UNSIGNED" if not a.signed else "DISABLED" if not a.enabled
                 else "enabled" if sg.access.allowed(a, current) else "NO-ACCESS")
        typer.echo(f"{a.agency_id:<50} {a.kind:<5} {state:<9} {a.name}")


@agency_app.command("add")
def agency_add(
    name: Annotated[str, typer.Argument(help="Agency name as on the MOU.")],
    mou_reference: Annotated[str, typer.Option(help="Reference of the signed MOU.")],
    redis_url: RedisOpt = None, audit_url: AuditOpt = None, policy: PolicyOpt = None,
    admin: AdminOpt = None, totp: TotpOpt = None,
) -> None:
    """Register an MOU agency the policy lists (off its mou_agencies, federal or without
    an MOU reference: refused)."""
    sg = _services(redis_url, audit_url, policy)
    admin = _admin(sg, admin, totp)
    try:
        agency, missed = _change(lambda: admin.add_agency(name, AgencyKind.MOU,
                                                          mou_reference))
    except RegistryError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"added {agency.agency_id} ({agency.name})")
    _exit_if_unaudited(missed)


@agency_app.command("seed")
def agency_seed(redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                policy: PolicyOpt = None, admin: AdminOpt = None, totp: TotpOpt = None) -> None:
    """Register the owning agency and the policy's MOU agencies that are missing."""
    sg = _services(redis_url, audit_url, policy)
    added, missed = _change(_admin(sg, admin, totp).ensure_defaults)
    typer.echo(f"added {added} agencies")
    _exit_if_unaudited(missed)


def _set_agency(agency_id: str, enabled: bool, redis_url: str | None, audit_url: str | None,
                policy: Path | None, admin: Path | None,
                totp: str | None) -> None:
    sg = _services(redis_url, audit_url, policy)
    try:
        agency, missed = _change(lambda: _admin(sg, admin, totp).set_agency_enabled(
            agency_id, enabled))
    except RegistryError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{agency.agency_id}: {'enabled' if agency.enabled else 'disabled'}")
    _exit_if_unaudited(missed)


@agency_app.command("disable")
def agency_disable(agency_id: str, redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                   policy: PolicyOpt = None, admin: AdminOpt = None, totp: TotpOpt = None) -> None:
    """Disable an agency: its users are refused from the next request on."""
    _set_agency(agency_id, False, redis_url, audit_url, policy, admin, totp)


@agency_app.command("enable")
def agency_enable(agency_id: str, redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                  policy: PolicyOpt = None, admin: AdminOpt = None, totp: TotpOpt = None) -> None:
    """Enable an agency again."""
    _set_agency(agency_id, True, redis_url, audit_url, policy, admin, totp)


def _admin(sg: Safeguards, token_file: Path | None, totp: str | None) -> Any:
    """The Admin of the administrator these credentials prove (token + TOTP, checked
    against the administrators file), or exit 1: refused, and audited."""
    from safeguards.admin import Admin
    from safeguards.admin_auth import AdminAuthError, AdminDirectory

    admins_file = SafeguardSettings().admins_file
    if admins_file is None:
        typer.echo("cannot start: ALPR_SG_ADMINS_FILE is not set (`alpr admin add`)",
                   err=True)
        raise typer.Exit(2)
    token = _read_secret(token_file) if token_file else None
    directory = AdminDirectory(admins_file)
    try:
        admin_id = directory.authenticate(token, totp)
    except AdminAuthError as exc:
        sg.audit.append(actor="anonymous", agency="-", action="admin_login",
                        decision="refused:admin_authentication",
                        details={"claimed_admin": exc.claimed, "refusal": str(exc),
                                 "client": _operator(None)})
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    return Admin(sg.access, sg.audit, f"admin:{admin_id}")


def _read_secret(path: Path) -> str:
    """A secret from a file, or from stdin for '-': never from the command line, where
    `ps` shows it to every local user."""
    if str(path) == "-":
        return sys.stdin.readline().strip()
    try:
        return path.read_text().strip()
    except OSError as exc:
        typer.echo(f"cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc


_T = TypeVar("_T")


def _change(call: Callable[[], _T]) -> tuple[_T, Any]:
    """What an audited change returned, and the OutcomeNotRecorded (None if none): a
    change made whose outcome record failed stands, and its result (a token) is needed."""
    from safeguards.admin import OutcomeNotRecorded

    try:
        return call(), None
    except OutcomeNotRecorded as missed:
        return missed.result, missed


def _exit_if_unaudited(missed: Any) -> None:
    """After the change's output: exit 3 saying what holds, if its outcome is unaudited."""
    if missed is None:
        return
    typer.echo(f"warning: done and in effect, but its outcome could not be audited "
               f"({one_line(missed.cause)}): the audit trail holds its write-ahead request "
               f"(record {missed.request.seq}), which covers it, not its outcome", err=True)
    raise typer.Exit(3)


@user_app.command("add")
def user_add(
    user_id: Annotated[str, typer.Argument(help="Login id: a-z 0-9 _ -")],
    agency: Annotated[str, typer.Option(help="Agency id (see `alpr agency list`).")],
    name: Annotated[str, typer.Option(help="Full name.")] = "",
    role: Annotated[list[str] | None, typer.Option(
        help="search (default), verify or dispatch (the dispatch console); repeatable.")]
    = None,
    employer: Annotated[str, typer.Option(
        help="Employer: the agency itself (the default); any other body is refused.")]
    = "",
    redis_url: RedisOpt = None, audit_url: AuditOpt = None, policy: PolicyOpt = None,
    admin: AdminOpt = None, totp: TotpOpt = None,
) -> None:
    """Create a user and print the token ONCE (only its hash is stored)."""
    sg = _services(redis_url, audit_url, policy)
    try:
        roles = [Role(r) for r in (role or [Role.SEARCH.value])]
        (user, token), missed = _change(lambda: _admin(sg, admin, totp).add_user(
            user_id, agency, name=name, roles=roles, employer=employer))
    except (RegistryError, ValueError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created {user.user_id} ({user.agency_id}); token (shown once):")
    typer.echo(token)
    _exit_if_unaudited(missed)


def _set_user(user_id: str, enabled: bool, redis_url: str | None, audit_url: str | None,
              admin: Path | None, totp: str | None) -> None:
    sg = _services(redis_url, audit_url, None)
    try:
        user, missed = _change(lambda: _admin(sg, admin, totp).set_user_enabled(user_id,
                                                                            enabled))
    except RegistryError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{user.user_id}: {'enabled' if user.enabled else 'disabled'}")
    _exit_if_unaudited(missed)


@user_app.command("disable")
def user_disable(user_id: str, redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                 admin: AdminOpt = None, totp: TotpOpt = None) -> None:
    """Revoke a user's access from the next request on."""
    _set_user(user_id, False, redis_url, audit_url, admin, totp)


@user_app.command("enable")
def user_enable(user_id: str, redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                admin: AdminOpt = None, totp: TotpOpt = None) -> None:
    """Restore a user's access."""
    _set_user(user_id, True, redis_url, audit_url, admin, totp)


@user_app.command("rotate-token")
def user_rotate(user_id: str, redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                admin: AdminOpt = None, totp: TotpOpt = None) -> None:
    """Issue a new token (the old one stops working); printed once."""
    sg = _services(redis_url, audit_url, None)
    try:
        token, missed = _change(lambda: _admin(sg, admin, totp).rotate_token(user_id))
    except RegistryError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(token)
    _exit_if_unaudited(missed)


@user_app.command("list")
def user_list(redis_url: RedisOpt = None, audit_url: AuditOpt = None) -> None:
    """Users, their agency, roles and state."""
    sg = _services(redis_url, audit_url, None)
    for u in sg.access.users():
        # A record not signed with the record key was written outside `alpr`: no access.
        state = ("UNSIGNED" if not u.signed else "enabled" if u.enabled else "DISABLED")
        typer.echo(f"{u.user_id:<24} {u.agency_id:<40} {','.join(sorted(u.roles)):<14} {state}")


@admin_app.command("keygen")
def admin_keygen(out: Annotated[Path | None, typer.Option(
        help="Where to write it (default: ALPR_SG_RECORD_KEY_FILE).")] = None) -> None:
    """Write a new record key (signs agency and user records); refuses to overwrite."""
    from safeguards.admin_auth import generate_record_key

    path = out or SafeguardSettings().record_key_file
    if path is None:
        typer.echo("--out or ALPR_SG_RECORD_KEY_FILE is required", err=True)
        raise typer.Exit(2)
    try:
        generate_record_key(path)
    except FileExistsError as exc:
        typer.echo(f"refused: {path} exists (a new key would invalidate every record)",
                   err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"record key written to {path} (mode 0600)")


@admin_app.command("add")
def admin_add(admin_id: Annotated[str, typer.Argument(help="Administrator id: a-z 0-9 _ -")],
              redis_url: RedisOpt = None, audit_url: AuditOpt = None) -> None:
    """Create an administrator in ALPR_SG_ADMINS_FILE (whoever may write that file is
    the root of trust); prints its token and TOTP secret ONCE. Audited."""
    from safeguards.admin_auth import AdminDirectory

    admins_file = SafeguardSettings().admins_file
    if admins_file is None:
        typer.echo("ALPR_SG_ADMINS_FILE is not set", err=True)
        raise typer.Exit(2)
    sg = _services(redis_url, audit_url, None)
    request = sg.audit.append(actor=_operator(None), agency="-", action="admin_add",
                              decision="requested", details={"admin_id": admin_id})
    try:
        token, secret = AdminDirectory(admins_file).add(admin_id)
    except ValueError as exc:
        sg.audit.append(actor=_operator(None), agency="-", action="admin_add",
                        decision="refused:registry", details={
                            "admin_id": admin_id, "request_seq": request.seq,
                            "refusal": str(exc)})
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc
    sg.audit.append(actor=_operator(None), agency="-", action="admin_add",
                    decision="allowed", details={"admin_id": admin_id,
                                                 "request_seq": request.seq})
    import pyotp

    typer.echo(f"administrator {admin_id}; token (shown once, keep it in a 0600 file):")
    typer.echo(token)
    typer.echo("TOTP (add it to an authenticator app):")
    typer.echo(pyotp.TOTP(secret).provisioning_uri(admin_id, issuer_name="alpr safeguards"))


# --- serve, retention, transparency ----------------------------------------------------


def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    redis_url: RedisOpt = None, audit_url: AuditOpt = None, policy: PolicyOpt = None,
) -> None:
    """Run the HTTP API (search, alert verification, transparency) with uvicorn."""
    from safeguards.api import main

    settings = _settings(redis_url, audit_url, policy)
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    main(settings.model_copy(update=updates))


KafkaOpt = Annotated[str, typer.Option("--kafka", envvar="ALPR_KAFKA_BOOTSTRAP",
                                       help="Kafka bootstrap servers.")]


@retention_app.command("topics")
def retention_topics(kafka: KafkaOpt = "127.0.0.1:9092", policy: PolicyOpt = None) -> None:
    """Create every topic that carries plates (frames, reads, alerts, dead letters) with
    the policy's retention, or lower it."""
    from kernel.settings import Topics
    from safeguards.policy import load_policy
    from safeguards.retention import ensure_retention_topics, plate_data_topics

    result = ensure_retention_topics(kafka, load_policy(policy), plate_data_topics(Topics()))
    for name, ms in result.items():
        typer.echo(f"{name}: retention.ms={ms} ({ms / 86_400_000:g} days)")


@retention_app.command("ingest")
def retention_ingest(kafka: KafkaOpt = "127.0.0.1:9092", redis_url: RedisOpt = None,
                     audit_url: AuditOpt = None, policy: PolicyOpt = None) -> None:
    """Consume alpr.reads and alpr.alerts into the retained stores (Ctrl-C stops)."""
    from kernel.settings import Topics
    from safeguards.ingest import run_ingest
    from safeguards.retention import ensure_retention_topics, plate_data_topics

    sg = _services(redis_url, audit_url, policy)
    topics = Topics()
    ensure_retention_topics(kafka, sg.policy, plate_data_topics(topics))
    settings = _settings(redis_url, audit_url, policy)
    try:
        stats = run_ingest(kafka, reads=sg.reads, alerts=sg.alerts, topics=topics,
                           group_id=settings.kafka_group)
    except KeyboardInterrupt:
        return
    typer.echo(f"stored reads={stats.reads} alerts={stats.alerts} invalid={stats.invalid}")


@retention_app.command("hotlist-updates")
def retention_hotlist_updates(kafka: KafkaOpt = "127.0.0.1:9092", redis_url: RedisOpt = None,
                              audit_url: AuditOpt = None, policy: PolicyOpt = None) -> None:
    """Raise historical hits for entries added by hotlist updates (Ctrl-C stops)."""
    from kernel.settings import Topics
    from safeguards.ingest import run_hotlist_updates

    sg = _services(redis_url, audit_url, policy)
    settings = _settings(redis_url, audit_url, policy)
    try:
        # The policy in force for each batch: prohibited purposes edited while it runs
        # apply from the next batch (an unreadable policy stops it, nothing committed).
        sent = run_hotlist_updates(kafka, reads=sg.reads, alerts=sg.alerts,
                                   hotlists=sg.hotlists, policy=lambda: sg.policy,
                                   topics=Topics(), group_id=settings.kafka_group)
    except KeyboardInterrupt:
        return
    typer.echo(f"historical alerts published: {sent}")


def transparency_cmd(redis_url: RedisOpt = None, audit_url: AuditOpt = None,
                     policy: PolicyOpt = None) -> None:
    """Print the transparency statistics as JSON."""
    typer.echo(_services(redis_url, audit_url, policy).transparency.report()
               .model_dump_json(indent=1))


def register(app: typer.Typer) -> None:
    """Add the safeguards commands to the main `alpr` app."""
    app.command("search", cls=_Command)(search_cmd)
    app.command("serve", cls=_Command)(serve_cmd)
    app.command("transparency", cls=_Command)(transparency_cmd)
    app.add_typer(audit_app, name="audit")
    app.add_typer(agency_app, name="agency")
    app.add_typer(user_app, name="user")
    app.add_typer(admin_app, name="admin")
    app.add_typer(retention_app, name="retention")
