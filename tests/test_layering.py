"""The packages' layering (README "Layout"): every import of ours points down, never up,
and no two packages import each other.

Fed: every module of the project, parsed (imports inside functions count too). Must
hold: a package imports only the packages ALLOWED lists for it; the allowed graph itself
has no cycle; the running system (everything but benchmarks, tools and tests) never
imports the training code (recognizers/training), the offline tools or the benchmarks;
the production launcher never imports the test servers or simulators (sim).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Package -> the packages of ours it may import. Read bottom-up:
#   kernel        settings, contracts, plate text: imports nothing of ours
#   connectors    Kafka I/O
#   recognizers   reading plates in a frame
#   hotlists      the lists in Redis: import, store, match (publishes updates to Kafka)
#   flows         the dataflow: frames -> reads -> alerts
#   safeguards    retention, search, audit, oversight of what the flow produced
#   sim           simulated cameras and local Kafka/Redis servers (demo, tests, benchmarks)
#   alpr          the shell: CLI, demo, flow launcher
#   benchmarks, tools   offline; tests: anything
ALLOWED: dict[str, frozenset[str]] = {
    "kernel": frozenset(),
    "connectors": frozenset({"kernel"}),
    "recognizers": frozenset({"kernel"}),
    "hotlists": frozenset({"kernel", "connectors"}),
    "flows": frozenset({"kernel", "connectors", "recognizers", "hotlists"}),
    "safeguards": frozenset({"kernel", "connectors", "hotlists"}),
    "sim": frozenset({"kernel", "connectors"}),
    "alpr": frozenset(
        {"kernel", "connectors", "recognizers", "hotlists", "flows", "safeguards", "sim"}
    ),
    "tools": frozenset({"kernel", "recognizers"}),
    "benchmarks": frozenset(
        {"kernel", "connectors", "recognizers", "hotlists", "flows", "safeguards", "sim",
         "alpr"}
    ),
}
OURS = frozenset(ALLOWED) | {"tests"}
# Not part of the running system: nothing that runs in production may import these.
OFFLINE_MODULES = ("recognizers.training", "tools", "benchmarks")
# The reader's training (offline) also renders plates to train on with the simulator.
TRAINING = "recognizers.training"
TRAINING_ALSO = frozenset({"sim"})
# The production launcher starts real flow processes; the test servers are not for it.
LAUNCHER = "alpr.launcher"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> Iterator[tuple[str, Path]]:
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path


def imports_of(path: Path, module: str, text: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in `text`, the source of `module` at
    `path`, relative imports resolved."""
    tree = ast.parse(text, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                base = ".".join(package[: len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target, node.lineno
            # `from recognizers import training` names a module too.
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def violations(modules: list[tuple[str, Path]], text: str | None = None) -> list[str]:
    """Every forbidden import of `modules`; `text`, if given, stands in for the source of
    each (a planted violation)."""
    found = []
    for module, path in modules:
        package = module.split(".")[0]
        runtime = package not in ("benchmarks", "tools") and not module.startswith(
            "recognizers.training")
        allowed = ALLOWED[package] | (TRAINING_ALSO if module.startswith(TRAINING) else set())
        for target, line in imports_of(path, module, path.read_text() if text is None else text):
            top = target.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line}: {module} imports {target}"
            if top in OURS and top != package and top not in allowed:
                found.append(f"{where} ({package} may import only {sorted(allowed)})")
            if runtime and any(target == m or target.startswith(m + ".")
                               for m in OFFLINE_MODULES):
                found.append(f"{where} (offline code, not for the running system)")
            if module == LAUNCHER and top == "sim":
                found.append(f"{where} (the production launcher must not use test servers)")
    return sorted(set(found))


def test_the_allowed_graph_has_no_cycle() -> None:
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"cycle: {' -> '.join((*path, package))}"
        if package in done:
            return
        for dep in ALLOWED[package]:
            visit(dep, (*path, package))
        done.add(package)

    for package in ALLOWED:
        visit(package, ())
    assert ALLOWED["kernel"] == frozenset()


def test_every_import_points_down_the_layers() -> None:
    modules = list(project_modules())
    assert len(modules) > 50  # the walk found the project
    assert violations(modules) == []


@pytest.mark.parametrize(("module", "source", "why"), [
    ("kernel.settings", "from hotlists.store import HotlistStore\n", "kernel may import only"),
    ("recognizers.voting", "import hotlists.plates\n", "recognizers may import only"),
    ("safeguards.historical", "def f():\n    from flows.hotlist_join import join_reads\n",
     "safeguards may import only"),
    ("hotlists.store", "from safeguards.policy import Policy\n", "hotlists may import only"),
    ("connectors.kafka", "from alpr import cli\n", "connectors may import only"),
    ("flows.pipeline", "from recognizers.training.train import train\n",
     "offline code"),
    ("recognizers.ppocr_onnx", "from . import training\n", "offline code"),
    ("alpr.launcher", "from sim.local_services import LocalKafka\n", "test servers"),
])
def test_a_planted_violation_is_caught(module: str, source: str, why: str) -> None:
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    assert path.exists(), path
    found = violations([(module, path)], text=source)
    assert any(why in v for v in found), found
