"""docker-compose.yml must agree with the code: nothing here can run it, so a typo in an
environment name or a topic would only show at a real site."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from kernel.settings import Settings, Topics

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


def _known_env_names() -> set[str]:
    names = {f"ALPR_{f.upper()}" for f in Settings.model_fields if f != "topics"}
    return names | {f"ALPR_TOPIC_{f.upper()}" for f in Topics.model_fields}


def test_flow_environment_names_are_settings_the_code_reads() -> None:
    env = SERVICES["flow"]["environment"]
    unknown = set(env) - _known_env_names()
    assert not unknown, f"docker-compose sets variables the code ignores: {unknown}"
    settings = Settings.model_validate({k[5:].lower(): v for k, v in env.items()
                                        if not k.startswith("ALPR_TOPIC_")})
    assert settings.metrics_port == Settings().metrics_port


def test_topics_created_are_the_topics_the_flow_uses() -> None:
    script = SERVICES["kafka-init"]["command"][0]
    created = dict(re.findall(r"--topic (\S+) .*?retention\.ms=(\d+)", script))
    topics = Topics()
    env = SERVICES["flow"]["environment"]
    for field in Topics.model_fields:
        name = getattr(topics, field)
        assert name in created, f"{name} is not created"
        assert env[f"ALPR_TOPIC_{field.upper()}"] == name
    # Reads are personal data under the 30-day rule: never kept longer.
    assert int(created[topics.reads]) <= THIRTY_DAYS_MS


def test_kafka_is_kraft_and_accepts_frames() -> None:
    kafka = SERVICES["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert int(kafka["KAFKA_MESSAGE_MAX_BYTES"]) >= Settings().max_frame_bytes
    assert SERVICES["flow"]["environment"]["ALPR_KAFKA_BOOTSTRAP"] in kafka[
        "KAFKA_ADVERTISED_LISTENERS"]


def test_redis_persists_with_aof() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert SERVICES["flow"]["environment"]["ALPR_REDIS_URL"].startswith("redis://redis:")


def _flow_processes() -> int:
    """The number of flow processes compose starts by default (`${ALPR_PROCESSES:-N}`)."""
    command = SERVICES["flow"]["command"]
    value = command[command.index("--processes") + 1]
    match = re.fullmatch(r"\$\{ALPR_PROCESSES:-(\d+)\}", value)
    assert match, value
    return int(match.group(1))


def _port_range(spec: str) -> range:
    low, _, high = spec.partition("-")
    return range(int(low), int(high or low) + 1)


def test_prometheus_scrapes_every_flow_process() -> None:
    # Process i serves /metrics on ALPR_METRICS_PORT + i: one target and port each.
    config = yaml.safe_load(COMPOSE["configs"]["prometheus"]["content"])
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    base = int(SERVICES["flow"]["environment"]["ALPR_METRICS_PORT"])
    ports = [base + i for i in range(_flow_processes())]
    assert targets == [f"flow:{port}" for port in ports]
    published = [p for spec in SERVICES["flow"]["ports"] for p in _port_range(
        spec.rpartition(":")[2])]
    exposed = [p for spec in SERVICES["flow"]["expose"] for p in _port_range(str(spec))]
    assert published == ports and exposed == ports


def test_prometheus_loads_the_alerting_rules_for_its_scrape_job() -> None:
    """The rules file the compose Prometheus mounts is alpr/prometheus_rules.yml (checked
    and unit-tested in test_prometheus_rules.py), it is in `rule_files`, and the rules'
    job label is the job Prometheus scrapes the flow as."""
    config = yaml.safe_load(COMPOSE["configs"]["prometheus"]["content"])
    mounts = {c["source"]: c["target"] for c in SERVICES["prometheus"]["configs"]}
    rules_config = next(k for k, v in COMPOSE["configs"].items() if "file" in v)
    assert (ROOT / COMPOSE["configs"][rules_config]["file"]).resolve() == (
        ROOT / "alpr" / "prometheus_rules.yml"
    )
    assert mounts[rules_config] in config["rule_files"]
    job = config["scrape_configs"][0]["job_name"]
    assert f'job="{job}"' in (ROOT / "alpr" / "prometheus_rules.yml").read_text()


def test_flow_runs_the_launcher_of_the_cli() -> None:
    import typer.main

    from alpr.cli import app

    command = SERVICES["flow"]["command"]
    assert command[:2] == ["alpr", "flow"]
    flow = typer.main.get_command(app).commands["flow"]  # type: ignore[attr-defined]
    assert "--processes" in {opt for param in flow.params for opt in param.opts}
    assert _flow_processes() >= 2  # one process per core: the fastest layout
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["alpr", "flow", "--processes"' in dockerfile


def test_flow_healthcheck_reads_the_readiness_gauge() -> None:
    """Fed: the compose healthcheck's command, pointed at a /metrics served here with
    alpr_flow_ready at 0, then 1. Out: unhealthy (exit 1), then healthy (exit 0); and it
    asks process 0's port."""
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    from sim.local_services import free_port

    command = SERVICES["flow"]["healthcheck"]["test"]
    assert command[:3] == ["CMD", "python", "-c"]
    base = SERVICES["flow"]["environment"]["ALPR_METRICS_PORT"]
    assert f"http://127.0.0.1:{base}/metrics" in command[3]
    registry = CollectorRegistry()
    ready = Gauge("alpr_flow_ready", "as flows.metrics.READY", registry=registry)
    port = free_port()
    start_http_server(port, addr="127.0.0.1", registry=registry)
    code = command[3].replace(f"127.0.0.1:{base}", f"127.0.0.1:{port}")
    assert subprocess.run([sys.executable, "-c", code], timeout=10).returncode == 1
    ready.set(1)
    assert subprocess.run([sys.executable, "-c", code], timeout=10).returncode == 0
