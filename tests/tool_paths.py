"""Where the tests find the system tools `make test` installs (promtool, prometheus,
chromium), or skip saying why: the reason `make test` left in .venv/<tool>-missing when
apt could not install it. In CI a missing tool fails the test instead."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

VENV = Path(__file__).resolve().parents[1] / ".venv"


def find_tool(name: str, *, env: str, marker: str, how: str) -> str:
    """The tool's path ($env, else on PATH), else skip (fail in CI). `marker` is the
    file under .venv that `make test` writes when it could not install the tool."""
    path = os.environ.get(env) or shutil.which(name)
    if path:
        return path
    missing = VENV / marker
    if missing.exists():
        pytest.skip(f"{name} unavailable: {missing.read_text().strip()}")
    if os.environ.get("CI"):
        pytest.fail(f"{name} missing in CI: `make test` {how}")
    pytest.skip(f"{name} not installed (`make test` {how})")
    raise AssertionError  # unreachable: skip raises
