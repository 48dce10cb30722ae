"""`alpr` commands fail clearly: an outage is one line on stderr and exit 2, never a
traceback.

`FailsClearly` is mixed into the click classes typer builds commands and groups with
(`class _Command(FailsClearly, TyperCommand)`); `unavailable` lists what an operator
cannot fix by retyping the command. A Redis that is down and one that hangs (its client
times out: kernel.redis_client) both raise redis.RedisError, so both end here.

`log_to_stderr` is the CLI's logging set-up (`alpr -v` adds tracebacks): warnings the
code logs on its way to such a failure (a cleanup that could not run) are single lines
too, not the raw tracebacks of Python's last-resort handler.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import click
import redis
import typer

__all__ = ["FailsClearly", "log_to_stderr", "log_with_times", "one_line"]


def one_line(exc: BaseException) -> str:
    """The error's message on one line (YAML and validation errors span several)."""
    return _squeeze(str(exc)) or type(exc).__name__


def _squeeze(text: str) -> str:
    return " ".join(text.split())


class FailsClearly:
    """Turns an `unavailable` error raised while the command runs into one line on
    stderr and exit 2 (nothing after the failure is done)."""

    unavailable: ClassVar[tuple[type[Exception], ...]] = (redis.RedisError,)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except self.unavailable as exc:
            what = "Redis unavailable: " if isinstance(exc, redis.RedisError) else ""
            typer.echo(f"error: {what}{one_line(exc)}", err=True)
            raise typer.Exit(2) from exc


class _OneLine(logging.Formatter):
    """`warning: message (ErrorType: why)`; the traceback follows only if `tracebacks`."""

    def __init__(self, *, tracebacks: bool, times: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks
        self.times = times

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()}: {_squeeze(record.getMessage())}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line += f" ({type(exc).__name__}: {one_line(exc)})"
            if self.tracebacks:
                line += "\n" + self.formatException(record.exc_info)
        return f"{self.formatTime(record)} {line}" if self.times else line


class _Stderr(logging.Handler):
    """Writes to sys.stderr as it is at each record (the CLI test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


_handler = _Stderr()


def log_to_stderr(*, verbose: bool = False) -> Callable[[], None]:
    """Send log records of warning and above (with verbose: all, and tracebacks) to
    stderr, one line each. Returns the undo: tests run many commands in one process."""
    root = logging.getLogger()
    level_before = root.level
    _handler.setFormatter(_OneLine(tracebacks=verbose))
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if _handler not in root.handlers:
        root.addHandler(_handler)

    def undo() -> None:
        root.removeHandler(_handler)
        root.setLevel(level_before)

    return undo


def log_with_times() -> None:
    """For a long-running command (a watcher): info records too, each line timed."""
    root = logging.getLogger()
    root.setLevel(min(root.level or logging.WARNING, logging.INFO))
    formatter = _handler.formatter
    tracebacks = isinstance(formatter, _OneLine) and formatter.tracebacks
    _handler.setFormatter(_OneLine(tracebacks=tracebacks, times=True))
    if _handler not in root.handlers:
        root.addHandler(_handler)
