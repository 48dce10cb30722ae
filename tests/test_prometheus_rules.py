"""alpr/prometheus_rules.yml: the SREs' alerting rules, checked and unit-tested by
promtool itself on synthetic series (`promtool test rules`). Each scenario feeds the
series of a failure and of a healthy neighbour, and says which alerts must be firing at
a time: a rule that fires too early (before its `for`), on the healthy series, with
other labels, or not at all, fails its scenario."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_metrics import _promtool

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "alpr" / "prometheus_rules.yml"
FLOW = 'job="alpr-flow"'
P0, P1 = 'instance="flow:9108"', 'instance="flow:9109"'


def _rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def _fired(alert: str, **labels: str) -> dict[str, Any]:
    """One expected alert: its labels (the rule's own added) and its annotations as
    Prometheus renders them for those labels."""
    rule = _rules()[alert]
    every = {**labels, **rule.get("labels", {})}

    def render(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    annotations = {k: render(v) for k, v in rule.get("annotations", {}).items()}
    return {"exp_labels": every, "exp_annotations": annotations}


# (alert, input series, [(eval time, expected alerts)])
SCENARIOS: list[tuple[str, dict[str, str], list[tuple[str, list[dict[str, Any]]]]]] = [
    ("ALPRFlowProcessDown",
     {f"up{{{FLOW}, {P0}}}": "1 1 0 0 0 0", f"up{{{FLOW}, {P1}}}": "1x5"},
     [("2m", []),  # down for under a minute: pending
      ("4m", [_fired("ALPRFlowProcessDown", job="alpr-flow", instance="flow:9108")])]),
    ("ALPRFlowNotReady",
     {f"alpr_flow_ready{{{FLOW}, {P0}}}": "0x10", f"alpr_flow_ready{{{FLOW}, {P1}}}": "0 0 1x8"},
     [("3m", []),
      ("6m", [_fired("ALPRFlowNotReady", job="alpr-flow", instance="flow:9108")])]),
    ("ALPRHotlistLookupsFailing",
     {f"alpr_hotlist_lookup_failures_total{{{FLOW}, {P0}}}": "0 0 0 5 10 15 20 25",
      f"alpr_hotlist_lookup_failures_total{{{FLOW}, {P1}}}": "0x7"},
     [("2m", []), ("4m", []),
      ("6m", [_fired("ALPRHotlistLookupsFailing", instance="flow:9108")])]),
    ("ALPRHotlistVanished",  # NCIC gone from 2m on (seen by flow:9108), NCMEC fine
     {f'alpr_hotlist_source_missing{{{FLOW}, {P0}, source="NCIC"}}': "0 0 1 1 1 0",
      f'alpr_hotlist_source_missing{{{FLOW}, {P1}, source="NCIC"}}': "0x5",
      f'alpr_hotlist_source_missing{{{FLOW}, {P0}, source="NCMEC"}}': "0x5"},
     [("1m", []), ("3m", [_fired("ALPRHotlistVanished", source="NCIC")]), ("5m", [])]),
    ("ALPRHotlistJoinsDropped",
     {f"alpr_hotlist_parked_dropped_total{{{FLOW}, {P0}}}": "0 0 0 40x30",
      f"alpr_hotlist_parked_dropped_total{{{FLOW}, {P1}}}": "0x33"},
     [("2m", []), ("4m", [_fired("ALPRHotlistJoinsDropped", instance="flow:9108")]),
      ("25m", [])]),
    ("ALPRNoFramesConsumed",
     {f'alpr_frames_in_total{{{FLOW}, {P0}, camera="cam-1"}}': "0+10x10 100x30"},
     [("25m", []), ("35m", [_fired("ALPRNoFramesConsumed")])]),
    ("ALPRCameraSilent",
     {f'alpr_frames_in_total{{{FLOW}, {P0}, camera="cam-1"}}': "0+10x70",
      f'alpr_frames_in_total{{{FLOW}, {P1}, camera="cam-2"}}': "0+10x30 300x40",
      f'alpr_frames_in_total{{{FLOW}, {P1}, camera="cam-3"}}': "0x70"},  # never sent
     [("42m", []), ("50m", [_fired("ALPRCameraSilent", camera="cam-2")])]),
    ("ALPRAlertsSlow",  # p95 between 1 and 2 s
     {f'alpr_capture_to_alert_seconds_bucket{{{FLOW}, {P0}, le="0.5"}}': "0+1x40",
      f'alpr_capture_to_alert_seconds_bucket{{{FLOW}, {P0}, le="1"}}': "0+2x40",
      f'alpr_capture_to_alert_seconds_bucket{{{FLOW}, {P0}, le="2"}}': "0+10x40",
      f'alpr_capture_to_alert_seconds_bucket{{{FLOW}, {P0}, le="+Inf"}}': "0+10x40"},
     [("5m", []), ("20m", [_fired("ALPRAlertsSlow")])]),
    ("ALPRAlertsSlow",  # healthy: every alert within 0.5 s
     {f'alpr_capture_to_alert_seconds_bucket{{{FLOW}, {P0}, le="0.5"}}': "0+10x40",
      f'alpr_capture_to_alert_seconds_bucket{{{FLOW}, {P0}, le="1"}}': "0+10x40",
      f'alpr_capture_to_alert_seconds_bucket{{{FLOW}, {P0}, le="+Inf"}}': "0+10x40"},
     [("20m", [])]),
    ("ALPRFramesQueueing",  # flow:9108: most frames wait 5-10 s; flow:9109 under 1 s
     {f'alpr_frame_age_seconds_bucket{{{FLOW}, {P0}, le="1"}}': "0+1x40",
      f'alpr_frame_age_seconds_bucket{{{FLOW}, {P0}, le="5"}}': "0+2x40",
      f'alpr_frame_age_seconds_bucket{{{FLOW}, {P0}, le="10"}}': "0+10x40",
      f'alpr_frame_age_seconds_bucket{{{FLOW}, {P0}, le="+Inf"}}': "0+10x40",
      f'alpr_frame_age_seconds_bucket{{{FLOW}, {P1}, le="1"}}': "0+10x40",
      f'alpr_frame_age_seconds_bucket{{{FLOW}, {P1}, le="5"}}': "0+10x40",
      f'alpr_frame_age_seconds_bucket{{{FLOW}, {P1}, le="10"}}': "0+10x40",
      f'alpr_frame_age_seconds_bucket{{{FLOW}, {P1}, le="+Inf"}}': "0+10x40"},
     [("5m", []), ("20m", [_fired("ALPRFramesQueueing", instance="flow:9108")])]),
    ("ALPRRecognitionSlow",  # flow:9108 p95 between 0.5 and 1 s; flow:9109 fast
     {f'alpr_recognition_seconds_bucket{{{FLOW}, {P0}, le="0.2"}}': "0+1x40",
      f'alpr_recognition_seconds_bucket{{{FLOW}, {P0}, le="0.5"}}': "0+2x40",
      f'alpr_recognition_seconds_bucket{{{FLOW}, {P0}, le="1"}}': "0+10x40",
      f'alpr_recognition_seconds_bucket{{{FLOW}, {P0}, le="+Inf"}}': "0+10x40",
      f'alpr_recognition_seconds_bucket{{{FLOW}, {P1}, le="0.2"}}': "0+10x40",
      f'alpr_recognition_seconds_bucket{{{FLOW}, {P1}, le="0.5"}}': "0+10x40",
      f'alpr_recognition_seconds_bucket{{{FLOW}, {P1}, le="1"}}': "0+10x40",
      f'alpr_recognition_seconds_bucket{{{FLOW}, {P1}, le="+Inf"}}': "0+10x40"},
     [("10m", []), ("25m", [_fired("ALPRRecognitionSlow", instance="flow:9108")])]),
    ("ALPRDeadLettersRising",  # 10% of frames
     {f'alpr_frames_in_total{{{FLOW}, {P0}, camera="cam-1"}}': "0+100x40",
      f'alpr_dead_letters_total{{{FLOW}, {P0}, reason="corrupt_jpeg"}}': "0+10x40"},
     [("10m", []), ("20m", [_fired("ALPRDeadLettersRising")])]),
    ("ALPRDeadLettersRising",  # healthy: 1% of frames
     {f'alpr_frames_in_total{{{FLOW}, {P0}, camera="cam-1"}}': "0+100x40",
      f'alpr_dead_letters_total{{{FLOW}, {P0}, reason="corrupt_jpeg"}}': "0+1x40"},
     [("20m", [])]),
    # flow:9108 started at 0 and loads again at 61m; flow:9109 started at 50m (a
    # restart) and loaded its models once, at 51m: a young process's first load.
    ("ALPRRecognizerReloading",
     {f"alpr_recognizer_loads_total{{{FLOW}, {P0}}}": "1x60 2x10",
      f"alpr_recognizer_loads_total{{{FLOW}, {P1}}}": "0x51 1x19",
      f"process_start_time_seconds{{{FLOW}, {P0}}}": "0x70",
      f"process_start_time_seconds{{{FLOW}, {P1}}}": "3000x70"},
     [("50m", []),
      ("65m", [_fired("ALPRRecognizerReloading", job="alpr-flow", instance="flow:9108")])]),
]


def test_rules_pass_promtool_check() -> None:
    check = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_rule_has_a_scenario() -> None:
    assert set(_rules()) == {alert for alert, _, _ in SCENARIOS}


@pytest.mark.parametrize(("alert", "series", "checks"), SCENARIOS,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SCENARIOS)])  # fmt: skip
def test_rule_fires_when_it_should(
    tmp_path: Path, alert: str, series: dict[str, str], checks: list[tuple[str, list]]
) -> None:
    spec = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": [{"eval_time": t, "alertname": alert, "exp_alerts": expected}
                                for t, expected in checks],
        }],
    }
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    run = subprocess.run([_promtool(), "test", "rules", str(test_file)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
