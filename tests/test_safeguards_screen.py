"""Issue 17, item 3: look-alike letters, accents and paraphrase do not pass the purpose
screen; the case number and offence are screened too; a reason needs real words."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from safeguard_builders import Stack

VALID = {"plate": "ABC123", "case_number": "2025-004711", "offence": "robbery",
         "reason": "Armed robbery at a gas station, suspect vehicle seen leaving"}

# What the review sent, each of which returned 200.
SMUGGLED_REASONS = [
    "Ιmmigration check on the driver of this vehicle",  # Greek capital iota
    "Driver is subject to deроrtation order",  # Cyrillic о and р
    "Locate vehicle for ІСЕ partners at the field office",  # Cyrillic І С Е
    "Vehicle of a person wanted on immigrátion matters",  # combining accent
    "I-247A detainer request for the registered owner",
    "We are deporting the registered owner next week",
    "Owner is a deportable alien per the field office",
    "Assist Enforcement and Removal Operations with locating the owner",
    "Execute an administrative warrant on the registered owner",
    "Owner is illegally present in the country per records",
]


@pytest.mark.parametrize("reason", SMUGGLED_REASONS)
def test_smuggled_immigration_reasons_are_refused(reason: str, http: TestClient,
                                                  stack: Stack) -> None:
    """Fed: a valid search whose reason is one the review got through. Must survive:
    refused (403 prohibited purpose, or 422 mixed scripts), audited as refused."""
    res = http.post("/search", json={**VALID, "reason": reason}, headers=stack.auth("det"))
    assert (res.status_code, res.json()["error"]) in {(403, "prohibited_purpose"),
                                                       (422, "mixed_script")}, res.json()
    last = list(stack.sg.audit.records())[-1]
    assert last.decision.startswith("refused:")


def test_mixed_script_word_is_refused_even_if_it_spells_nothing(http: TestClient,
                                                                stack: Stack) -> None:
    """Fed: a reason with a Latin word holding one Cyrillic letter (spelling no
    keyword). Must survive: 422 mixed_script."""
    res = http.post("/search", json={**VALID, "reason": "Armed rоbbery suspect vehicle "
                                     "seen at the scene"}, headers=stack.auth("det"))
    assert (res.status_code, res.json()["error"]) == (422, "mixed_script")


@pytest.mark.parametrize(("field", "value", "status", "code"), [
    ("reason", "...............", 422, "reason_too_short"),
    ("reason", "1234567890 12345 ????", 422, "reason_too_short"),
    ("case_number", "0000", 422, "invalid_case_number"),
    ("case_number", "TEST", 422, "invalid_case_number"),
    ("case_number", "TEST-1", 422, "invalid_case_number"),
    ("case_number", "ICE-DETAINER-1", 403, "prohibited_purpose"),
    ("case_number", "ІСЕ-2025-1", 403, "prohibited_purpose"),
])
def test_placeholders_and_smuggled_case_numbers_are_refused(
        field: str, value: str, status: int, code: str, http: TestClient,
        stack: Stack) -> None:
    """Fed: a valid search with one field replaced by what the review got accepted.
    Must survive: the refusal named."""
    res = http.post("/search", json={**VALID, field: value}, headers=stack.auth("det"))
    assert (res.status_code, res.json()["error"]) == (status, code)


@pytest.mark.parametrize("reason", [
    "Armed robbery, suspect vehicle seen leaving; victim José Peña injured",
    "Stolen vehicle reported by the owner, police report attached",
    "Homicide investigation: vehicle of the suspect near the scene",
])
def test_ordinary_reasons_still_pass(reason: str, http: TestClient, stack: Stack) -> None:
    """Fed: ordinary reasons, with accented names. Must survive: 200 (the screen is not
    a blanket refusal)."""
    res = http.post("/search", json={**VALID, "reason": reason}, headers=stack.auth("det"))
    assert res.status_code == 200, res.json()
