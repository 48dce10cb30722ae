"""docs/configuration.md is generated from the settings models (alpr/config_doc.py).

Fed: the models, the `alpr` commands and the committed file. Must hold: the file is what
the generator prints now (regenerate: `python -m alpr.config_doc > docs/configuration.md`);
every ALPR_* variable the running code names is in it; every setting has a description.
"""

from __future__ import annotations

import re
from pathlib import Path

from alpr.config_doc import DOC_PATH, render
from hotlists.match_policy import POLICY_ENV
from kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("kernel", "alpr", "flows", "recognizers", "hotlists", "connectors", "sim",
           "safeguards")
# Names that look like variables but are not: error markers of the Lua scripts.
NOT_VARIABLES = {"ALPR_LOCK_LOST", "ALPR_AUDIT_BROKEN"}


def test_configuration_doc_is_current() -> None:
    assert DOC_PATH.read_text() == render(), (
        "docs/configuration.md is stale: python -m alpr.config_doc > docs/configuration.md")


def test_every_variable_the_code_names_is_documented() -> None:
    doc = DOC_PATH.read_text()
    named = {
        name
        for package in RUNTIME
        for path in (ROOT / package).rglob("*.py")
        if "training" not in path.parts
        for name in re.findall(r"ALPR_[A-Z][A-Z0-9_]*[A-Z0-9]", path.read_text())
    }
    prefixes = {"ALPR_SG", "ALPR_TOPIC", "ALPR_TOPICS"}
    missing = sorted(n for n in named - NOT_VARIABLES - prefixes if f"`{n}`" not in doc)
    assert missing == []
    for name in ("ALPR_HOTLIST_MATCH_POLICY", "ALPR_SG_AUDIT_REDIS_URL", "ALPR_TOKEN",
                 "ALPR_TOPIC_HOTLIST_UPDATES", "ALPR_HOTLIST_EVENT_TIMEOUT_S"):
        assert f"| `{name}` |" in doc


def test_the_match_policy_variable_is_the_settings_field() -> None:
    # hotlists/match_policy.py reads the variable itself; the field documents it.
    assert "ALPR_" + "hotlist_match_policy".upper() == POLICY_ENV
    assert "hotlist_match_policy" in Settings.model_fields
