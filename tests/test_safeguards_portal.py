"""The public transparency portal page (safeguards/portal.py), over HTTP and in Chromium.

Fed: the default (Denver) policy, live searches (allowed and refused), closed hits, a
broken policy file, a phone. Must survive: every section of the Denver portal (seed
004) with the policy's words, every figure defined, "Last Updated" = the policy's
effective date and figures "as of", the breakdowns counted from the trail, the change
log and audit head, a plain HTML error page, `/`, HEAD, offline API docs, and on a phone
no horizontal scroll and readable text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis
from browser_helpers import launched_browser, screenshot, served
from fastapi.testclient import TestClient
from policy_helpers import edit
from safeguard_builders import (
    OWNER_ID,
    TEST_SIGNER,
    TEST_TOKEN_COST,
    Stack,
    build_stack,
    make_alert,
    make_entry,
    make_read,
)

from safeguards.access import Role
from safeguards.admin import Admin
from safeguards.api import create_app
from safeguards.policy import default_policy_path
from safeguards.search import SearchRequest
from safeguards.settings import SafeguardSettings
from safeguards.verification import HitOutcome, VerificationRequest
from safeguards.wiring import Safeguards

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# The section titles of Denver's portal (shared/seeds/denver-pd-transparency-portal.txt).
SEED_SECTIONS = (
    "Last Updated", "Overview", "What's Detected", "What's Not Detected",
    "Acceptable Use Policy", "Prohibited Uses", "Access Policy", "System Access History",
    "Hotlist Policy", "Non-Law Enforcement Access to ALPR Data", "Data retention (in days)",
    "Number of owned cameras", "Hotlists Alerted On", "External organizations with access",
    "Vehicles detected in the last 30 days", "Hotlist hits in the last 30 days",
    "Searches in the last 30 days",
)


def _search(stack: Stack, user: str, offence: str, reason: str) -> None:
    request = SearchRequest(plate="KTV482", case_number="2025-004711", reason=reason,
                            offence=offence)
    try:
        stack.sg.search.search(stack.tokens[user], request, channel="http")
    except Exception as exc:  # a refusal: audited, which is what is counted
        assert type(exc).__name__ == "Refusal"


def _close(stack: Stack, plate: str, entry_id: str, outcome: HitOutcome) -> None:
    alert = make_alert(make_read(plate), make_entry(plate, entry_id))
    stack.sg.alerts.put(alert)
    verified = outcome in (HitOutcome.CONFIRMED, HitOutcome.VEHICLE_NOT_LOCATED)
    stack.sg.verification.verify(stack.tokens["disp"], alert.alert_id, VerificationRequest(
        outcome="verified" if verified else "dismissed", check_system="NCIC",
        check_result="confirmed_active" if verified else "not_checked",
        image_matches=verified, hit_outcome=outcome))


def _cell(page: str, label: str) -> str:
    found = re.search(rf"<td>{re.escape(label)}</td><td class=n>([\d,]+)</td>", page)
    assert found, f"no row {label!r}"
    return found.group(1)


def test_the_portal_has_every_seed_section_and_defines_every_figure(http: TestClient) -> None:
    page = http.get("/transparency.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for section in SEED_SECTIONS:
        assert section in text, section
    assert "Thu Sep 19 2024" in text  # the policy's effective date, not the page's time
    assert re.search(r"Figures as of:</strong> \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert "Colorado Criminal Justice Records Act" in text  # the policy file's text
    assert '<meta name="viewport" content="width=device-width' in text
    assert "<script" not in text.lower()
    figures = text.count('class="figure"')
    assert figures >= 10 and text.count('class="def"') == figures
    assert '<span class="value">95</span>' in text  # owned cameras, from the policy
    assert 'href="/transparency"' in text
    assert text.count("<li>") >= 66  # the MOU agencies, one a line
    assert http.get("/").text.split("Figures as of")[0] == text.split("Figures as of")[0]


def test_searches_refusals_and_hit_outcomes_are_broken_down(
    data_client: redis.Redis, client: redis.Redis
) -> None:
    stack = build_stack(data_client, client)
    reason = "armed robbery of a corner store, suspect vehicle seen leaving"
    _search(stack, "det", "robbery", reason)
    _search(stack, "det", "robbery", reason)
    _search(stack, "aur", "homicide", "homicide investigation, vehicle seen at the scene")
    _search(stack, "det", "robbery", "check immigration status of the driver for robbery")
    _search(stack, "det", "littering", "littering from a moving vehicle on the highway")
    for i, outcome in enumerate((HitOutcome.CONFIRMED, HitOutcome.MISREAD,
                                 HitOutcome.MISREAD, HitOutcome.NO_LONGER_WANTED)):
        _close(stack, f"OUT{i}00", f"N{i}", outcome)
    text = TestClient(create_app(stack.sg)).get("/transparency.html").text
    assert _cell(text, "Robbery") == "2" and _cell(text, "Homicide or attempted homicide") == "1"
    assert _cell(text, "Denver CO PD") == "2" and _cell(text, "Aurora CO PD") == "1"
    assert _cell(text, "Offence not on the permitted list") == "1"
    assert _cell(text, "Prohibited purpose (immigration, traffic, personal use, ...)") == "1"
    ncic = text.split(">NCIC</span>", 1)[1].split("</div>", 1)[0]
    assert "75% false hits" in ncic and "3 of 4 closed hits" in ncic
    assert "<dt>Misread</dt><dd>2</dd>" in ncic and "<dt>Confirmed</dt><dd>1</dd>" in ncic
    head = stack.sg.audit.head()
    assert f"Record {head.seq:,}," in text and head.hash in text


def test_the_change_log_lists_each_policy_change(
    tmp_path: Path, data_client: redis.Redis, client: redis.Redis
) -> None:
    """Fed: the site's policy file, then an edit taking an agency off the MOU list. Must
    survive: two rows, newest first, the removal named."""
    path = tmp_path / "policy.yaml"
    path.write_text(default_policy_path().read_text(encoding="utf-8"), encoding="utf-8")
    sg = Safeguards.build(SafeguardSettings(policy_file=path), data=data_client, audit=client,
                          token_cost=TEST_TOKEN_COST, signer=TEST_SIGNER)
    Admin(sg.access, sg.audit, "test").ensure_defaults()
    http = TestClient(create_app(sg))
    assert "No policy change recorded yet" not in http.get("/transparency.html").text
    edit(path, "  - Avon CO PD\n", "")
    sg.access.policy  # noqa: B018 - the next request reads (and records) the edit
    text = TestClient(create_app(sg)).get("/transparency.html").text
    log = text.split("Policy and MOU list change log", 1)[1].split("</table>", 1)[0]
    rows = log.split("<tr>")[2:]
    assert len(rows) == 2 and "Avon CO PD" in rows[0] and "mou agency ids" in rows[0]


def test_a_broken_policy_is_a_plain_html_page(
    tmp_path: Path, data_client: redis.Redis, client: redis.Redis
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(default_policy_path().read_text(encoding="utf-8"), encoding="utf-8")
    sg = Safeguards.build(SafeguardSettings(policy_file=path), data=data_client, audit=client,
                          token_cost=TEST_TOKEN_COST, signer=TEST_SIGNER)
    edit(path, "  robbery: Robbery\n", "  robbery: Robbery\n  traffic_enforcement: x\n")
    res = TestClient(create_app(sg)).get("/transparency.html")
    assert res.status_code == 503 and res.headers["content-type"].startswith("text/html")
    body = res.text.split("<body>", 1)[1]
    assert "<h1>Transparency portal unavailable</h1>" in body and "{" not in body


def test_root_head_and_offline_docs(http: TestClient) -> None:
    for path in ("/", "/transparency.html"):
        head = http.head(path)
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/html")
    docs = http.get("/docs").text
    assert "/docs-static/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    bundle = http.get("/docs-static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


def test_on_a_phone_the_portal_has_no_horizontal_scroll_and_readable_text(
        data_client: redis.Redis, client: redis.Redis) -> None:
    """Fed: the portal with data in every table, opened by an emulated phone (Pixel 5:
    device width, touch, device pixel ratio; not a narrow desktop window). Must survive:
    the page lays out at the phone's width, nothing scrolls sideways, no text under 14 px;
    HEAD answers on the real server."""
    stack = build_stack(data_client, client)
    _search(stack, "det", "robbery", "armed robbery of a corner store, suspect vehicle")
    _close(stack, "PHN100", "N1", HitOutcome.MISREAD)
    stack.sg.access.add_user("dana", OWNER_ID, roles=[Role.DISPATCH])
    with served(create_app(stack.sg)) as url, launched_browser() as (p, browser):
        context = browser.new_context(**p.devices["Pixel 5"])
        page = context.new_page()
        assert page.request.head(f"{url}/").status == 200
        page.goto(f"{url}/transparency.html")
        width = page.evaluate("window.innerWidth")
        assert width < 500  # laid out at the phone's width, not 980 px
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        smallest = page.evaluate("""() => Math.min(...[...document.querySelectorAll(
            'p, dd, dt, li, td, th, span, h1, h2, h3')].filter(e => e.innerText.trim())
            .map(e => parseFloat(getComputedStyle(e).fontSize)))""")
        assert smallest >= 14
        screenshot(page, "portal-phone.png")
        desktop = browser.new_page(viewport={"width": 1366, "height": 768})
        desktop.goto(f"{url}/")
        screenshot(desktop, "portal.png", full_page=True)
