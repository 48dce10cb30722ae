"""`alpr` commands fail clearly: an outage is one line on stderr and exit 2, never a
traceback.

`FailsClearly` is mixed into the click classes typer builds commands and groups with
(`class _Command(FailsClearly, TyperCommand)`); `unavailable` lists what an operator
cannot fix by retyping the command. A Redis that is down and one that hangs (its client
times out: alpr.redis_client) both raise redis.RedisError, so both end here.
"""

from __future__ import annotations

from typing import Any, ClassVar

import click
import redis
import typer

__all__ = ["FailsClearly", "one_line"]


def one_line(exc: BaseException) -> str:
    """The error's message on one line (YAML and validation errors span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


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
