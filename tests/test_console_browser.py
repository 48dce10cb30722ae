"""The dispatch console in a real browser: headless Chromium (Debian's) against the API on
uvicorn, alerts published to a real broker (tansu, or $KAFKA_BOOTSTRAP), a durable Redis.

Each test feeds alerts to a fresh `alpr.alerts`-like topic and checks what a dispatcher
sees and what the audit trail keeps: an alert on the page within 2 s, priority 1 pinned
with its sound, a hostile reason shown as text, claim and outcome on the trail (and the
claim seen by another dispatcher), no duplicate after a replay or a reload, nothing left
of a plate once the session expired.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytest
import redis
from browser_helpers import launched_browser, screenshot, served
from safeguard_builders import OWNER_ID, Stack, build_stack, make_read

from connectors.kafka import delete_topics, ensure_topics, make_producer
from kernel.contracts import Alert, HotlistEntry, HotlistSource, MatchInfo, make_alert
from safeguards.access import Role
from safeguards.api import create_app
from safeguards.console import Console
from sim.plate_render import render_plate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _crop(plate: str) -> str:
    image = render_plate(plate, np.random.default_rng(7), width=320)
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode()


def alert_for(plate: str, *, source: HotlistSource = HotlistSource.NCIC, priority: int = 2,
              reason: str = "Stolen vehicle", hotlist_plate: str | None = None,
              entry_id: str | None = None, camera: str = "cam-7 Colfax & Broadway",
              unsure: tuple[int, ...] = ()) -> Alert:
    read = make_read(plate, camera=camera)
    confidences = [0.55 if i in unsure else 0.97 for i in range(len(plate))]
    read = read.model_copy(update={"char_confidences": confidences, "crop_jpeg_b64": _crop(plate),
                                   "state": "CO", "lat": 39.7392, "lon": -104.9903,
                                   "heading": 92.0, "lane": "2"})
    listed = hotlist_plate or plate
    entry = HotlistEntry(plate=listed, state="CO", source=source, reason=reason,
                         entry_id=entry_id or f"E-{plate}", priority=priority)
    diff = [i for i, (a, b) in enumerate(zip(plate, listed, strict=False)) if a != b]
    match = MatchInfo(method="fuzzy" if diff else "exact", hotlist_plate=listed,
                      read_plate=plate, differing_positions=diff)
    return make_alert(read, entry, match, int(time.time() * 1000))


@dataclass
class Desk:
    """A console on uvicorn following one topic, its users and a browser."""

    stack: Stack
    console: Console
    url: str
    topic: str
    bootstrap: str
    playwright: Any
    browser: Any
    tokens: dict[str, str]

    def publish(self, *alerts: Alert) -> None:
        producer = make_producer(self.bootstrap, **{"linger.ms": 0})
        for alert in alerts:
            producer.produce(self.topic, value=alert.to_json_bytes(), key=alert.alert_id)
        assert producer.flush(10) == 0

    def page(self, user: str = "dana", **context: Any) -> Any:
        ctx = self.browser.new_context(viewport={"width": 1366, "height": 768}, **context)
        page = ctx.new_page()
        page.goto(f"{self.url}/console")
        if user:
            self.login(page, user)
        return page

    def login(self, page: Any, user: str) -> None:
        page.fill("#token", self.tokens[user])
        page.press("#token", "Enter")
        page.wait_for_selector("#feed-status:has-text('Live')", timeout=5000)

    def audit(self, action: str) -> list[Any]:
        return [r for r in self.stack.sg.audit.records() if r.action == action]


@pytest.fixture
def desk_factory(data_client: redis.Redis, client: redis.Redis, kafka: str,
                 unique_topic: Callable[[str], str]) -> Iterator[Callable[..., Desk]]:
    made: list[tuple[Console, Any]] = []
    topics: list[str] = []

    def make(idle_timeout_s: float = 600) -> Desk:
        stack = build_stack(data_client, client)
        tokens = {}
        for user, name in (("dana", "Dana Dispatch"), ("sam", "Sam Second")):
            _, tokens[user] = stack.sg.access.add_user(
                user, OWNER_ID, name=name, roles=[Role.DISPATCH, Role.VERIFY])
        topic = unique_topic("alerts")
        topics.append(topic)
        ensure_topics(kafka, {topic: 2})
        console = Console(stack.sg, idle_timeout_s=idle_timeout_s, bootstrap=kafka,
                          topic=topic)
        console.start()
        server = served(create_app(stack.sg, console=console))
        url = server.__enter__()
        browser_cm = launched_browser()
        playwright, browser = browser_cm.__enter__()
        made.append((console, (browser_cm, server)))
        return Desk(stack, console, url, topic, kafka, playwright, browser, tokens)

    yield make
    for console, (browser_cm, server) in made:
        browser_cm.__exit__(None, None, None)
        server.__exit__(None, None, None)
        console.stop()
    delete_topics(kafka, topics)


def _rows(page: Any, alert_id: str) -> int:
    return page.locator(f'#alerts li[data-alert-id="{alert_id}"]').count()


def test_an_alert_published_to_kafka_is_on_the_page_within_2s_pinned_and_escaped(
        desk_factory: Callable[..., Desk]) -> None:
    """Fed: a priority-2 alert, then an Amber (priority 1) alert whose reason carries a
    <script>, then a newer priority-2 one. Must survive: each shows within 2 s of being
    published; the Amber alert stays on top (orange, labelled, one sound); the script is
    text on the page and never runs."""
    desk = desk_factory()
    page = desk.page()
    older = alert_for("KTV4821")
    desk.publish(older)
    started = time.monotonic()
    page.wait_for_selector(f'li[data-alert-id="{older.alert_id}"]', timeout=2000)
    assert time.monotonic() - started < 2.0

    hostile = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
    amber = alert_for("AMB3R77", source=HotlistSource.NCMEC, priority=1,
                      reason=f"Amber alert: abducted child {hostile}")
    desk.publish(amber)
    started = time.monotonic()
    page.wait_for_selector(f'li[data-alert-id="{amber.alert_id}"]', timeout=2000)
    assert time.monotonic() - started < 2.0
    newer = alert_for("NEW5150", hotlist_plate="NEW5I50", unsure=(4,))
    desk.publish(newer)
    page.wait_for_selector(f'li[data-alert-id="{newer.alert_id}"]', timeout=2000)

    order = page.eval_on_selector_all("#alerts li", "els => els.map(e => e.dataset.alertId)")
    assert order == [amber.alert_id, newer.alert_id, older.alert_id]
    top = page.locator("#alerts li").first
    assert "PRIORITY 1" in top.inner_text()
    assert top.evaluate("e => getComputedStyle(e).borderLeftColor") == "rgb(230, 159, 0)"
    assert page.evaluate("document.body.dataset.sounds") == "1"  # the Amber alert only

    top.click()
    page.wait_for_selector("#detail .instruction")
    detail = page.inner_text("#detail")
    assert hostile in detail  # shown as the text it is
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#detail script, #detail img[src='x']").count() == 0
    assert "VERIFICATION REQUIRED" in detail and amber.entry.entry_id in detail

    # The fuzzy hit: the unsure character and the one that differs are marked.
    page.locator(f'#alerts li[data-alert-id="{newer.alert_id}"]').click()
    page.wait_for_selector("#detail .ch.unsure")
    assert page.locator("#detail .chars").first.locator(".ch.unsure").count() == 1
    assert page.locator("#detail .ch.differs").count() == 2  # read and hotlist plate
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    screenshot(page, "console.png")


def test_claim_and_outcome_land_in_the_audit_trail_and_others_see_the_claim(
        desk_factory: Callable[..., Desk]) -> None:
    """Fed: one alert; Dana claims it with the keyboard, Sam (another browser) watches,
    then Dana records "misread". Must survive: Sam sees who has it and cannot claim it;
    the trail holds Dana's login, claim and the verification with its hit outcome."""
    desk = desk_factory()
    dana, sam = desk.page("dana"), desk.page("sam")
    alert = alert_for("CLM2024")
    desk.publish(alert)
    for page in (dana, sam):
        page.wait_for_selector(f'li[data-alert-id="{alert.alert_id}"]', timeout=2000)

    dana.keyboard.press("j")  # first alert
    dana.keyboard.press("Enter")
    dana.wait_for_selector("#claim")
    dana.keyboard.press("Tab")
    assert dana.evaluate("document.activeElement.id") == "claim"
    dana.keyboard.press("Enter")
    dana.wait_for_selector("#outcome-form")

    sam.wait_for_selector(f'li[data-alert-id="{alert.alert_id}"]:has-text("Claimed by Dana '
                          'Dispatch")', timeout=3000)
    sam.locator(f'li[data-alert-id="{alert.alert_id}"]').click()
    assert sam.locator("#claim").is_disabled()

    dana.check("input[value='misread']")
    dana.fill("#note", "crop shows KLM2024")
    dana.click("#record")
    dana.wait_for_selector("#detail .done")
    sam.wait_for_selector(f'li[data-alert-id="{alert.alert_id}"]:has-text("Closed: Misread")',
                          timeout=3000)

    assert [(r.actor, r.decision) for r in desk.audit("console_login")] == [
        ("dana", "allowed"), ("sam", "allowed")]
    claims = desk.audit("alert_claim")
    assert [(r.actor, r.decision, r.details["alert_id"]) for r in claims] == [
        ("dana", "claimed", alert.alert_id)]
    outcome = [r for r in desk.audit("alert_verification") if r.decision == "dismissed"]
    assert len(outcome) == 1
    assert outcome[0].actor == "dana" and outcome[0].details["hit_outcome"] == "misread"
    assert outcome[0].details["source"] == "NCIC"


def test_an_outcome_other_than_misread_needs_a_fresh_check(
        desk_factory: Callable[..., Desk]) -> None:
    """Fed: "confirmed" without ticking the fresh NCIC/CCIC check. Must survive: refused
    on the page and on the trail (`recheck_required`), the alert still open; ticked, it
    is recorded as verified."""
    desk = desk_factory()
    page = desk.page()
    alert = alert_for("CNF7001")
    desk.publish(alert)
    page.locator(f'li[data-alert-id="{alert.alert_id}"]').click(timeout=2000)
    page.click("#claim")
    page.click("#record")  # "confirmed" is preselected; the check box is not ticked
    page.wait_for_selector("#action-message:has-text('NCIC/CCIC again')")
    assert desk.stack.sg.alerts.verification(alert.alert_id) is None
    assert [r.decision for r in desk.audit("alert_verification")] == [
        "refused:recheck_required"]
    page.check("#rechecked")
    page.click("#record")
    page.wait_for_selector("#detail .done")
    verification = desk.stack.sg.alerts.verification(alert.alert_id)
    assert verification is not None and verification.hit_outcome == "confirmed"


def test_a_reload_or_a_replay_catches_up_without_duplicates(
        desk_factory: Callable[..., Desk]) -> None:
    """Fed: alert A; the page reloads; A is published again (a replay) with B; the page
    goes away while C is published, then comes back. Must survive: A, B and C each shown
    exactly once, C caught up on return."""
    desk = desk_factory()
    page = desk.page()
    a, b, c = alert_for("RLD1001"), alert_for("RLD1002"), alert_for("RLD1003")
    desk.publish(a)
    page.wait_for_selector(f'li[data-alert-id="{a.alert_id}"]', timeout=2000)
    page.reload()
    page.wait_for_selector("#feed-status:has-text('Live')", timeout=5000)
    desk.publish(a, b)
    page.wait_for_selector(f'li[data-alert-id="{b.alert_id}"]', timeout=2000)
    time.sleep(0.5)  # the replayed A had every chance to show twice
    assert _rows(page, a.alert_id) == 1 and _rows(page, b.alert_id) == 1

    page.goto("about:blank")
    desk.publish(c)
    time.sleep(0.5)
    page.goto(f"{desk.url}/console")
    page.wait_for_selector(f'li[data-alert-id="{c.alert_id}"]', timeout=5000)
    assert [_rows(page, x.alert_id) for x in (a, b, c)] == [1, 1, 1]
    assert page.locator("#alerts li").count() == 3


def test_a_network_drop_resumes_from_the_last_event(desk_factory: Callable[..., Desk]) -> None:
    """Fed: alert A, then the server drops every event stream (as a lost connection
    looks to the page) and B is published meanwhile. Must survive: the page reconnects
    by itself saying the last event it saw (Last-Event-ID), gets B, and shows A once."""
    desk = desk_factory()
    page = desk.page()
    streams: list[Any] = []
    page.on("request", lambda r: streams.append(r) if r.url.endswith("/console/events")
            else None)
    a, b = alert_for("NET2001"), alert_for("NET2002")
    desk.publish(a)
    page.wait_for_selector(f'li[data-alert-id="{a.alert_id}"]', timeout=2000)
    desk.console.drop_streams()
    desk.publish(b)
    page.wait_for_selector(f'li[data-alert-id="{b.alert_id}"]', timeout=4000)
    assert _rows(page, a.alert_id) == 1 and _rows(page, b.alert_id) == 1
    resumed = [r.all_headers().get("last-event-id", "") for r in streams]
    assert resumed and resumed[-1].startswith(desk.console.feed.epoch + ":")


def test_an_expired_session_sees_no_plate_data(desk_factory: Callable[..., Desk]) -> None:
    """Fed: a console whose sessions end after 3 s idle; an alert shown, then nothing
    touched for longer. Must survive: the page is back at the login with no plate in it,
    and the server answers the old cookie with 401 and no data."""
    desk = desk_factory(idle_timeout_s=3)
    page = desk.page()
    alert = alert_for("EXP9090")
    desk.publish(alert)
    page.locator(f'li[data-alert-id="{alert.alert_id}"]').click(timeout=2000)
    page.wait_for_selector("#detail .instruction")
    page.wait_for_selector("#login:not([hidden])", timeout=8000)
    assert "EXP9090" not in page.content()
    assert page.locator("#alerts li").count() == 0
    for path in ("/console/events", "/console/me"):
        res = page.request.get(f"{desk.url}{path}")
        assert res.status == 401 and "EXP9090" not in res.text()
    fresh = desk.browser.new_context().request.get(f"{desk.url}/console/events")
    assert fresh.status == 401  # no login at all: no data either


def test_a_user_without_the_dispatch_role_cannot_log_in(
        desk_factory: Callable[..., Desk]) -> None:
    """Fed: the token of a search-only user. Must survive: refused on the page, audited as
    `missing_role`, no session."""
    desk = desk_factory()
    page = desk.page(user="")
    page.fill("#token", desk.stack.tokens["det"])
    page.press("#token", "Enter")
    page.wait_for_selector("#login-message:has-text('dispatch')")
    assert page.locator("#console").is_hidden()
    assert [r.decision for r in desk.audit("console_login")] == ["refused:missing_role"]
