"""The install locks (requirements.lock, requirements-runtime.lock: `make lock`).

Fed: the two lock files and pyproject.toml as committed. Must hold: every requirement of
pyproject.toml (and the dev extra, for the full lock) is pinned with hashes; the image's
runtime lock pins each package it shares with the full lock at the same version and
hashes, so the image runs what CI tested; neither lock drifts from pyproject's ranges.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)\s*(;[^\\]*)?\\?$")


def _pins(path: Path) -> dict[tuple[str, str], tuple[str, frozenset[str]]]:
    """(name, marker) -> (version, hashes) of every pin in a lock file."""
    pins: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
    key = None
    for line in path.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            key = (canonicalize_name(match[1]), (match[3] or "").strip("; ").strip())
            pins[key] = (match[2], frozenset())
        elif key and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[key]
            pins[key] = (version, hashes | {line.strip().split(":", 1)[1].rstrip(" \\")})
        elif not line.startswith(" "):
            key = None
    return pins


def _requirements(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    if extra:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_every_requirement_is_pinned_with_hashes_within_its_range() -> None:
    for lock, extra in (("requirements.lock", "dev"), ("requirements-runtime.lock", None)):
        pins = _pins(ROOT / lock)
        assert pins and all(hashes for _, hashes in pins.values()), lock
        for req in _requirements(extra):
            found = [v for (name, _), (v, _) in pins.items()
                     if name == canonicalize_name(req.name)]
            assert found, f"{req.name} is not in {lock}: run `make lock`"
            assert all(req.specifier.contains(v, prereleases=True) for v in found), (
                f"{lock} pins {req.name} {found}, outside {req.specifier}: run `make lock`")


def test_the_image_runs_what_ci_tested() -> None:
    full, runtime = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-runtime.lock")
    assert set(runtime) <= set(full), set(runtime) - set(full)
    for key, (version, hashes) in runtime.items():
        assert full[key] == (version, hashes), key
    assert not {name for name, _ in runtime} & {"pytest", "ruff", "playwright"}
