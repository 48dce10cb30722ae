"""`alpr hotlist import|status|watch|republish`: the operator's commands for hotlists.

Wired into the main CLI by `register_hotlist_commands(hotlist_app)` (alpr/cli.py), which
replaces any earlier commands of the same names.

Exit codes: 0 done (the new list is live, its import report saved by the switch-over
itself); 1 the import was refused or failed (the previous list keeps serving); 2 bad
arguments, or no broker for the hotlist-update events before the import (nothing
changed: import with --no-events, then `alpr hotlist republish --source X` once Kafka
answers), or Redis down or hung outside an import (one line on stderr, never a
traceback: kernel.cli_errors), or Redis failed after the switch-over while the new entries
were read back for the hotlist-update event (the list is live, the event was not
published: `alpr hotlist republish --source X` once Redis answers; re-running the import
would announce nothing new), or after an NCMEC import's last alert went live, before its
event was built (import the file again); 3 the list changed but its hotlist-update event
was not published because of the broker (historical hits will miss it: `alpr hotlist
republish --source X` once Kafka is back); 4 the outcome is unknown or partial: Redis
failed during the switch-over and could not be asked after, so the new version may or
may not be live (`alpr hotlist status` tells once Redis answers), or it failed part-way
through an NCMEC import, whose alerts go live one by one (the command names those added,
the one that may be, those not: import the same file again once Redis answers, re-sent
alerts replace themselves); 130 the import was interrupted (Ctrl-C, SIGTERM): its
unfinished version is deleted and the source's lock freed; an NCMEC import interrupted
once its first alert was sent names, as for 4, the alerts added and cancelled, the one
that may be, those not (import the same file again).

The broker has ALPR_HOTLIST_EVENT_TIMEOUT_S (default 15) to acknowledge an event
(`import`, `watch`; `republish --timeout`).

`republish` sends the serving version's hotlist-update event again (hotlists.republish):
exit 0 published, 1 the source has no live version, 2 Redis down or hung, 3 the broker
did not take it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import redis
import typer
from typer.core import TyperCommand

from kernel.cli_errors import FailsClearly, log_with_times, one_line

if TYPE_CHECKING:  # imported by the commands themselves: `alpr --help` stays quick
    from hotlists.republish import Republished

__all__ = ["register_hotlist_commands"]

_COMMANDS = ("import", "status", "watch", "republish")


class FormatName(StrEnum):
    ncic = "ncic"
    ccic = "ccic"
    ncmec = "ncmec"
    csv = "csv"


RedisOpt = Annotated[
    str, typer.Option("--redis", envvar="ALPR_REDIS_URL", help="Redis holding the hotlists.")
]
KafkaOpt = Annotated[
    str | None,
    typer.Option(
        "--kafka",
        envvar="ALPR_KAFKA_BOOTSTRAP",
        help="Broker for hotlist-update events (default 127.0.0.1:9092).",
    ),
]
SourceOpt = Annotated[
    FormatName,
    typer.Option("--source", "-s", help="File format: ncic, ccic, ncmec (Amber) or csv (agency)."),
]
ListOpt = Annotated[
    FormatName,
    typer.Option("--source", "-s", help="The list: ncic, ccic, ncmec (Amber) or csv (agency)."),
]
# The broker's time to acknowledge a hotlist-update event (the same for every command).
EVENT_TIMEOUT_ENV = "ALPR_HOTLIST_EVENT_TIMEOUT_S"
AckTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar=EVENT_TIMEOUT_ENV,
        min=0.1,
        help="Seconds the broker may take to acknowledge.",
    ),
]
EventTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--event-timeout",
        envvar=EVENT_TIMEOUT_ENV,
        min=0.1,
        help="Seconds the broker may take to acknowledge the hotlist-update event (and to "
        "answer before the import starts).",
    ),
]
NoEventsOpt = Annotated[
    bool, typer.Option("--no-events", help="Do not publish to alpr.hotlist-updates.")
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Let an empty or much smaller file replace the list."),
]
BadShareOpt = Annotated[
    float,
    typer.Option(
        "--max-bad-share",
        envvar="ALPR_HOTLIST_MAX_BAD_SHARE",
        min=0.0,
        max=1.0,
        help="Abort (keep the old list) if more than this share of rows is malformed.",
    ),
]
ShrinkOpt = Annotated[
    float,
    typer.Option(
        "--max-shrink",
        min=0.0,
        max=1.0,
        help="Abort if the new list is more than this share smaller than the serving one.",
    ),
]
TzOpt = Annotated[
    str, typer.Option("--tz", help="Time zone of dates without one (agency lists).")
]


class _Command(FailsClearly, TyperCommand):
    """A Redis that is down or hangs: one line and exit 2, not a traceback."""


def register_hotlist_commands(hotlist_app: typer.Typer) -> None:
    """Add import, status, watch and republish to `alpr hotlist` (replacing same-named
    commands)."""
    hotlist_app.registered_commands = [
        c for c in hotlist_app.registered_commands if c.name not in _COMMANDS
    ]
    hotlist_app.command("import", cls=_Command)(import_command)
    hotlist_app.command("status", cls=_Command)(status_command)
    hotlist_app.command("watch", cls=_Command)(watch_command)
    hotlist_app.command("republish", cls=_Command)(republish_command)


def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The list file.")],
    # Required: a file parsed in the wrong format would be refused row by row.
    source: SourceOpt,
    redis_url: RedisOpt = "redis://127.0.0.1:6379/0",
    kafka: KafkaOpt = None,
    no_events: NoEventsOpt = False,
    force: ForceOpt = False,
    max_bad_share: BadShareOpt = 0.05,
    max_shrink: ShrinkOpt = 0.5,
    tz: TzOpt = "UTC",
    progress: Annotated[
        bool, typer.Option(help="Progress bar (on a terminal only).")
    ] = True,
    event_timeout: EventTimeoutOpt = 15.0,
) -> None:
    """Import FILE: replace the source's list atomically (NCIC, CCIC, agency CSV) or add
    and cancel Amber alerts (NCMEC). A bad file leaves the serving list untouched.

    Exit 0: the new list is live. 1: refused or failed, the serving list is unchanged (a
    source whose import was cut off is free again within 10 s). 2: bad arguments, or
    Kafka unreachable before the import (nothing changed), or live but Redis failed
    reading it back for its hotlist-update event (not published). 3: live, but Kafka did
    not take its hotlist-update event.
    After 2 or 3 with the list live, run `alpr hotlist republish --source X` (not the
    import again: it would announce nothing new).
    4: outcome unknown, Redis failed during the switch-over: the new list may or may not
    be live (check alpr hotlist status); for NCMEC, partial: Redis failed part-way, the
    command names the alerts added and not (import the same file again once Redis
    answers). 130: interrupted (Ctrl-C, SIGTERM); for NCMEC, the command names the alerts
    added and not, as for 4.
    """
    from tqdm import tqdm

    from hotlists.import_run import (
        ImportFailedError,
        ImportInterruptedError,
        ImportOutcomeUnknownError,
        ImportPartialError,
    )

    importer = _importer(redis_url, kafka, no_events, max_bad_share, max_shrink, tz,
                         source=source.value, event_timeout=event_timeout)
    bar = tqdm(
        total=file.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=f"{source.value} {file.name}",
        disable=not progress or None,  # None: only on a terminal
        file=sys.stderr,
    )
    try:
        with _terminate_like_ctrl_c():
            report = importer.import_file(source.value, file, force=force,
                                          progress=bar.update)
    except ImportFailedError as exc:
        bar.close()
        _print_rejections(exc.report.as_dict())
        if isinstance(exc.__cause__, redis.RedisError):
            # An outage, not a refusal: said as every command says it (kernel.cli_errors),
            # but exit 1 as for any import that did not happen.
            typer.echo(f"error: Redis unavailable: {one_line(exc.__cause__)} (import "
                       "failed, the serving list is unchanged)", err=True)
        else:
            typer.echo(f"import refused, the serving list is unchanged: {exc}", err=True)
        raise typer.Exit(1) from None
    except ImportPartialError as exc:
        bar.close()
        _print_rejections(exc.report.as_dict())
        _say_partial(exc, source.value, file, no_events=no_events)
        raise typer.Exit(2 if exc.complete else 4) from None
    except ImportInterruptedError as exc:
        # NCMEC: each alert went live on its own, so "unchanged" would be untrue.
        bar.close()
        _print_rejections(exc.report.as_dict())
        _say_partial(exc, source.value, file, interrupted=True, no_events=no_events)
        raise typer.Exit(130) from None
    except ImportOutcomeUnknownError as exc:
        bar.close()
        # The chain: ImportOutcomeUnknownError <- SwitchOverUnknownError <- the Redis error.
        cause = exc.__cause__.__cause__ if exc.__cause__ else None
        typer.echo(f"error: Redis unavailable: {one_line(cause or exc)} (outcome unknown: "
                   f"the switch-over was sent but not confirmed, so version "
                   f"{exc.report.version} may or may not be live; run `alpr hotlist "
                   "status` once Redis answers to see which version serves)", err=True)
        raise typer.Exit(4) from None
    except KeyboardInterrupt:
        bar.close()
        if source is FormatName.ncmec:  # interrupted before its first alert was sent
            typer.echo("error: import interrupted before any alert was sent; nothing "
                       "changed", err=True)
        else:
            typer.echo("error: import interrupted; the serving list is unchanged unless "
                       "the switch-over had run (alpr hotlist status shows the serving "
                       "version)", err=True)
        raise typer.Exit(130) from None
    bar.close()
    data = report.as_dict()
    _print_rejections(data)
    typer.echo(_summary(data))
    if report.event_published is False and report.event_failed_on == "redis":
        # A Redis failure, said and exited as every command says it (kernel.cli_errors).
        typer.echo(f"error: Redis unavailable: {report.event_error} (version "
                   f"{report.version} is live and the flow matches reads against it, but its "
                   "hotlist-update event was not published: its entries could not be read "
                   "back, so historical hits will miss them; run `alpr hotlist republish "
                   f"--source {source.value}` once Redis answers)", err=True)
        raise typer.Exit(2)
    if report.event_published is False:
        # Not "re-run the import": compared with the version now live, it adds nothing.
        typer.echo(f"WARNING: hotlist-update event not published: {report.event_error} "
                   f"(version {report.version} is live; historical hits will miss its new "
                   f"entries until `alpr hotlist republish --source {source.value}` runs "
                   "once Kafka is back)", err=True)
        raise typer.Exit(3)


def status_command(
    redis_url: RedisOpt = "redis://127.0.0.1:6379/0",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per source: serving version, entries, when imported, rejected rows and why."""
    from hotlists.store import HotlistStore
    from kernel.contracts import HotlistSource
    from kernel.redis_client import redis_from_url

    status = HotlistStore(redis_from_url(redis_url)).status()
    rows = {src.value: _status_row(s.as_dict()) for src, s in sorted(status.items())}
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo("no hotlists loaded")
    for name, row in rows.items():
        lock = status[HotlistSource(name)].import_lock
        typer.echo(
            f"{name}: version={row['version']} entries={row['entries']} "
            f"imported_at={_when(row['imported_at'])} updated_at={_when(row['updated_at'])} "
            f"misread_index_depth={row['index_depth']}"
            + (" IMPORTING" if row["importing"] else "")
            + (" IMPORT LOCK STALE" if lock and lock.stale else "")
        )
        if lock:
            typer.echo(f"  import lock: {lock.describe()}")
        if row["cut_off_version"] is not None:
            typer.echo(f"  CUT-OFF IMPORT: version {row['cut_off_version']} was never "
                       "finished; it is not served and the next import removes it")
        rep = row.get("report") or {}
        if rep:
            typer.echo(
                f"  last import: {rep.get('file')} rows={rep.get('rows')} "
                f"rejected={rep.get('rejected')} {rep.get('rejected_by_code') or ''} "
                f"refused={rep.get('refused')} {rep.get('refused_by_reason') or ''}"
            )
        last = row.get("last_attempt") or {}
        if last.get("report_missing") and not rep:
            # The switch-over's placeholder: this version went live without a report (the
            # importer saves its report with the switch-over; this one gave none).
            typer.echo(f"  last import: version {last.get('version')} went live "
                       f"{_when(last.get('finished_at'))}; its import report was not saved")
        elif last and not last.get("ok"):
            typer.echo(
                f"  LAST ATTEMPT FAILED {_when(last.get('finished_at'))}: {last.get('file')}: "
                f"{last.get('error')}"
            )


def watch_command(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Drop folder.")],
    source: SourceOpt = FormatName.ncic,
    pattern: Annotated[str, typer.Option(help="Files to take (glob).")] = "*",
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between polls.")] = 10.0,
    settle: Annotated[
        float, typer.Option(min=0.0, help="Seconds a file must be unchanged before import.")
    ] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="One poll, then exit.")] = False,
    redis_url: RedisOpt = "redis://127.0.0.1:6379/0",
    kafka: KafkaOpt = None,
    no_events: NoEventsOpt = False,
    max_bad_share: BadShareOpt = 0.05,
    max_shrink: ShrinkOpt = 0.5,
    tz: TzOpt = "UTC",
    event_timeout: EventTimeoutOpt = 15.0,
) -> None:
    """Import every new file dropped in FOLDER (newest only for full extracts)."""
    from hotlists.importers import get_format
    from hotlists.watch import FolderWatcher

    log_with_times()
    importer = _importer(redis_url, kafka, no_events, max_bad_share, max_shrink, tz,
                         source=source.value, event_timeout=event_timeout)
    fmt = get_format(source.value)
    watcher = FolderWatcher(
        folder,
        lambda path: importer.import_file(fmt, path),
        replaces=fmt.mode == "replace",
        pattern=pattern,
        settle_s=settle,
        state_name=f".alpr-hotlist-watch-{fmt.name}.json",
    )
    if once:
        for outcome in watcher.poll():
            typer.echo(f"{outcome.path.name}: {outcome.status}"
                       + (f" ({outcome.error})" if outcome.error else ""))
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    watcher.run(interval, stop)


def republish_command(
    source: ListOpt,
    redis_url: RedisOpt = "redis://127.0.0.1:6379/0",
    kafka: KafkaOpt = None,
    timeout: AckTimeoutOpt = 15.0,
) -> None:
    """Publish the hotlist-update event of the source's live version again:
    the event its import would have sent (its new entries as added), with a new event id.
    Run it after an import exited 2 or 3 because its event was not published.

    Exit 0: published. 1: the source has no live version. 2: Redis down or hung.
    3: Kafka did not take the event (nothing published: run it again once Kafka answers).
    """
    from hotlists.events import KafkaUpdatePublisher
    from hotlists.republish import NothingLiveError, rebuild_update
    from hotlists.store import HotlistStore
    from kernel.redis_client import redis_from_url
    from kernel.settings import Settings

    # Redis first: a source with nothing live, or a Redis outage, is said without waiting
    # on the broker.
    try:
        rebuilt = rebuild_update(HotlistStore(redis_from_url(redis_url)), source.value)
    except NothingLiveError as exc:
        typer.echo(f"republish refused: {exc}", err=True)
        raise typer.Exit(1) from None
    update = rebuilt.update
    try:
        KafkaUpdatePublisher(kafka or Settings().kafka_bootstrap,
                             timeout_s=timeout).publish(update)
    except Exception as exc:  # no broker, no ack: the event is not out
        typer.echo(f"error: Kafka did not take the hotlist-update event of "
                   f"{update.source.value} version {update.version}: {one_line(exc)} "
                   f"(nothing published; run `alpr hotlist republish --source "
                   f"{source.value}` again once Kafka answers)", err=True)
        raise typer.Exit(3) from None
    typer.echo(_republished(rebuilt))
    if rebuilt.cancellations_lost:
        # Never a silent "none": consumers would keep a cancelled Amber alert.
        typer.echo(f"WARNING: the cancellations of the last {update.source.value} import "
                   f"are not in this event: {rebuilt.cancellations_lost}. Consumers may still "
                   "hold alerts it cancelled: import that file again (its event names every "
                   "cancellation of the file)", err=True)


# --- helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, systemd, docker stop) interrupts the import as Ctrl-C does, so its
    cleanup runs: the unfinished version is deleted and the source's lock freed at once,
    not left to expire. (Signals reach only the main thread: elsewhere, nothing to do.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _importer(
    redis_url: str,
    kafka: str | None,
    no_events: bool,
    max_bad_share: float,
    max_shrink: float,
    tz_name: str,
    *,
    source: str,
    event_timeout: float,
) -> Any:
    from hotlists.events import KafkaUpdatePublisher
    from hotlists.import_run import Importer
    from hotlists.store import HotlistStore
    from kernel.redis_client import redis_from_url

    publisher = None
    if not no_events:
        from kernel.settings import Settings

        try:
            publisher = KafkaUpdatePublisher(kafka or Settings().kafka_bootstrap,
                                             timeout_s=event_timeout)
        except Exception as exc:  # no broker: say so before touching any list
            # Importing without the event leaves historical hits blind to the new
            # entries until it is published: say how.
            typer.echo(f"cannot reach Kafka for hotlist-update events ({one_line(exc)}); "
                       "nothing was imported. Import with --no-events, then run `alpr "
                       f"hotlist republish --source {source}` once Kafka answers to publish "
                       "the event (historical hits search for the new entries only then)",
                       err=True)
            raise typer.Exit(2) from None
    store = HotlistStore(redis_from_url(redis_url))
    return Importer(store, publisher=publisher, max_bad_share=max_bad_share,
                    max_shrink=max_shrink, tz=_tz(tz_name))


def _tz(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        typer.echo(f"unknown time zone {name!r}", err=True)
        raise typer.Exit(2) from None


def _say_partial(exc: Any, source: str, file: Path, *, interrupted: bool = False,
                 no_events: bool = False) -> None:
    """An NCMEC import cut off part-way, by Redis (ImportPartialError) or by Ctrl-C or
    SIGTERM (ImportInterruptedError, `interrupted`): what is live on stdout, the error
    with what may be and what is not, and what to do, on stderr."""
    adds = [c for c in exc.applied if c.kind == "add"]
    cancels = [c for c in exc.applied if c.kind == "cancel"]
    every = [*exc.applied, *([exc.in_doubt] if exc.in_doubt else []), *exc.not_applied]
    n_adds = sum(c.kind == "add" for c in every)
    n_cancels = len(every) - n_adds
    typer.echo(f"{exc.report.source.value}: {len(adds)} of {n_adds} alert(s) added"
               + (f" ({_ids(adds)})" if adds else "")
               + f", {len(cancels)} of {n_cancels} cancellation(s) done"
               + (f" ({_ids(cancels)})" if cancels else ""))
    if interrupted:
        error = "import interrupted"
    else:
        cause = exc.__cause__
        what = "Redis unavailable: " if isinstance(cause, redis.RedisError) else ""
        error = f"{what}{one_line(cause or exc)}"
    again = (f"import the same file again (`alpr hotlist import {file} --source {source}`): "
             "re-sent alerts replace themselves")
    if no_events:  # a re-run with --no-events publishes no event: republish announces them
        again += ("; this run had --no-events: a re-run with it publishes no hotlist-update "
                  f"event either, so run `alpr hotlist republish --source {source}` after "
                  "it (without --no-events, the re-run's event names every alert and "
                  "cancellation of the file)")
    else:
        again += ", and its hotlist-update event names them all"
    if exc.complete and interrupted and no_events:
        typer.echo(f"error: {error} (every alert of the file is live and every "
                   "cancellation done; only its import report may not have been saved; "
                   f"{again})", err=True)
        return
    if exc.complete and interrupted and exc.report.event_published:
        typer.echo(f"error: {error} (every alert of the file is live, every cancellation "
                   "done and its hotlist-update event published; only its import report "
                   "was not saved for `alpr hotlist status`)", err=True)
        return
    if exc.complete and interrupted:
        typer.echo(f"error: {error} (every alert of the file is live and every "
                   "cancellation done, but its hotlist-update event was not confirmed "
                   f"published; {again})", err=True)
        return
    if exc.complete:
        typer.echo(f"error: {error} (every alert of the file is live and every cancellation "
                   "done, but Redis failed before the import could read the list back: no "
                   f"hotlist-update event was published; once Redis answers, {again})",
                   err=True)
        return
    doubt = (f"{exc.in_doubt} may or may not be live (sent, not confirmed); "
             if exc.in_doubt else "")
    missing = f"not done: {_ids(exc.not_applied)}; " if exc.not_applied else ""
    then = ("to complete it, " if interrupted
            else "Run `alpr hotlist status` once Redis answers, then ")
    sep = "; " if interrupted else ". "
    typer.echo(f"error: {error} (outcome partial: the import was cut off part-way; "
               f"{doubt}{missing}no hotlist-update event was published{sep}{then}{again})",
               err=True)


def _ids(changes: list[Any], limit: int = 10) -> str:
    shown = ", ".join(str(c) for c in changes[:limit])
    return shown + (f" and {len(changes) - limit} more" if len(changes) > limit else "")


def _print_rejections(data: dict[str, Any], limit: int = 20) -> None:
    for rej in data.get("rejections", [])[:limit]:
        typer.echo(f"rejected line {rej['line']} [{rej['code']}]: {rej['detail']}", err=True)
    more = data.get("rejected", 0) - min(limit, len(data.get("rejections", [])))
    if more > 0:
        typer.echo(f"... and {more} more rejected rows (see alpr hotlist status --json)",
                   err=True)
    if data.get("refused"):
        typer.echo(f"refused (never stored): {data['refused']} {data['refused_by_reason']}",
                   err=True)


def _summary(data: dict[str, Any]) -> str:
    if data["mode"] == "upsert":
        return (f"{data['source']}: {data['upserted']} alert(s) added, {data['removed']} "
                f"cancelled; version {data['version']} now {data['entries']} entries")
    if data["previous_version"] is None:
        added = "all new"
    elif data["added"] is None:  # Redis failed right after the switch-over
        added = "new plates not counted"
    else:
        added = f"{data['added']} new plates"
    return (
        f"{data['source']}: version {data['version']} live with {data['entries']} entries "
        f"({added}; {data['rows']} rows, {data['rejected']} rejected, {data['refused']} "
        f"refused, {data['skipped_expired']} expired) in {data['seconds']:.1f} s"
    )


def _republished(rebuilt: Republished) -> str:
    update = rebuilt.update
    count = rebuilt.announced
    what = f"{count} entries announced" if count is not None else "new entries (not counted)"
    if update.added_truncated:
        what += " (too many to carry: consumers read them from the store)"
    if rebuilt.whole_list and update.action == "upsert":
        what += " (every live alert: single upserts are not kept one by one)"
    elif rebuilt.whole_list:
        what += " (every live entry: the version's import report was not saved)"
    what += " as added"
    if update.action == "upsert" and not rebuilt.cancellations_lost:
        ids = [r["entry_id"] for r in update.removed]
        what += (f", {len(ids)} cancellation(s) of the last import as removed"
                 + (f" ({_ids(ids)})" if ids else ""))
    return (f"{update.source.value}: version {update.version} republished: {what}; "
            f"event {update.event_id}")


def _status_row(row: dict[str, Any]) -> dict[str, Any]:
    # Keep the stored report compact in status: counts and the first rejections.
    rep = row.get("report")
    if isinstance(rep, dict):
        rep["rejections"] = rep.get("rejections", [])[:20]
    return row


def _when(ms: Any) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
