"""A site policy file the tests edit while services run (imported by name: pytest puts
tests/ on the path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeguards.policy import default_policy_path
from sim.local_services import LocalRedis


def site_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: LocalRedis,
                data_server: LocalRedis) -> Path:
    """A site policy (a copy of the default) and the environment of `alpr` and the API:
    the audit trail on `server`, the data on `data_server`."""
    path = tmp_path / "policy.yaml"
    path.write_text(default_policy_path().read_text(encoding="utf-8"), encoding="utf-8")
    for name in ("REDIS_URL", "HOTLIST_REDIS_URL"):
        monkeypatch.setenv(f"ALPR_SG_{name}", data_server.url)
    monkeypatch.setenv("ALPR_SG_AUDIT_REDIS_URL", server.url)
    monkeypatch.setenv("ALPR_SG_POLICY_FILE", str(path))
    return path


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must be there) by `new` in the file, as an administrator."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
