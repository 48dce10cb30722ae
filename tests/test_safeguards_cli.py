"""The `alpr` subcommands of the safeguards: every one has a working --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from alpr.cli import app
from safeguards.cli import register

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
