"""The dispatch console: live alerts for the people who act on them (`/console`).

    GET  /console                         the page (no data in it: it logs in first)
    POST /console/login                   {"token": ...}: a user with the dispatch role
    GET  /console/me                      the session's user; 401 when there is none
    POST /console/touch                   a click or key press: the session stays open
    POST /console/logout
    GET  /console/events                  Server-Sent Events: alerts and their claims and
                                          outcomes, newest last; `Last-Event-ID` resumes
    POST /console/alerts/{id}/claim       claim (others see who has it)
    POST /console/alerts/{id}/outcome     confirmed, misread, wrong state, no longer
                                          wanted, vehicle not located

A session is a random cookie (HttpOnly, SameSite=Strict) over the user's own token,
held in this process's memory only (never in Redis), and ends after
`ALPR_SG_CONSOLE_IDLE_TIMEOUT_S` without a click or key press: the event stream then
says `expired` and the page drops every plate it showed. Nothing about an alert is
served without a session. Every request that changes something goes through the same
services as the API (claims: `claims.py`; outcomes: the verification service), with the
user's token, so each is admitted, refused or recorded on the audit trail as there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from kernel.settings import Settings, Topics
from safeguards.access import AccessDeniedError, Role
from safeguards.alerts import CheckResult, Outcome
from safeguards.claims import ClaimService
from safeguards.console_feed import AlertFeed, AlertFollower
from safeguards.settings import SafeguardSettings
from safeguards.verification import (
    ACTION as VERIFY_ACTION,
)
from safeguards.verification import (
    VERIFIED_HIT_OUTCOMES,
    HitOutcome,
    VerificationRequest,
)
from safeguards.wiring import Safeguards

__all__ = ["COOKIE", "Console", "ConsoleOutcome", "Sessions"]

COOKIE = "alpr_console"
LOGIN_ACTION = "console_login"
# The page's own files; nothing else is served from the package.
_ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
# Pages may load only what this server sends: no inline script, no other origin.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
             "Content-Security-Policy": _CSP, "Referrer-Policy": "no-referrer"}


CookieValue = Annotated[str | None, Cookie(alias=COOKIE)]


@dataclass
class Session:
    token: str
    user_id: str
    name: str
    roles: frozenset[str]
    last_active: float


class Sessions:
    """Console sessions by cookie, in memory; each ends `idle_timeout_s` after the last
    touch. The cookie is stored as its sha256, so a memory dump shows no usable cookie."""

    def __init__(self, idle_timeout_s: float, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._by_hash: dict[str, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(cookie: str) -> str:
        return hashlib.sha256(cookie.encode()).hexdigest()

    def open(self, token: str, user_id: str, name: str, roles: frozenset[str]) -> str:
        cookie = secrets.token_urlsafe(32)
        with self._lock:
            self._by_hash[self._key(cookie)] = Session(token, user_id, name, roles,
                                                       self._clock())
        return cookie

    def get(self, cookie: str | None, *, touch: bool = False) -> Session | None:
        if not cookie:
            return None
        key = self._key(cookie)
        now = self._clock()
        with self._lock:
            session = self._by_hash.get(key)
            if session is None:
                return None
            if now - session.last_active > self.idle_timeout_s:
                del self._by_hash[key]
                return None
            if touch:
                session.last_active = now
            return session

    def expires_in(self, session: Session) -> float:
        return max(0.0, self.idle_timeout_s - (self._clock() - session.last_active))

    def close(self, cookie: str | None) -> None:
        if cookie:
            with self._lock:
                self._by_hash.pop(self._key(cookie), None)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: str = Field(min_length=1, max_length=200)


class ConsoleOutcome(BaseModel):
    """How a dispatcher closes a hit. Every outcome but a misread needs a fresh check of
    the entry in NCIC/CCIC (`rechecked`): a daily list can still show a recovered car."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    hit_outcome: HitOutcome
    check_system: Literal["NCIC", "CCIC", "NCMEC"]
    rechecked: bool = Field(False, description="the entry was checked again just now")
    note: str = Field("", max_length=500)

    def verification(self) -> VerificationRequest:
        outcome = self.hit_outcome
        check = {HitOutcome.MISREAD: CheckResult.NOT_CHECKED,
                 HitOutcome.WRONG_STATE: CheckResult.NOT_FOUND,
                 HitOutcome.NO_LONGER_WANTED: CheckResult.CLEARED,
                 }.get(outcome, CheckResult.CONFIRMED_ACTIVE)
        return VerificationRequest(
            outcome=Outcome.VERIFIED if outcome in VERIFIED_HIT_OUTCOMES else Outcome.DISMISSED,
            check_system=self.check_system, check_result=check,
            image_matches=outcome is not HitOutcome.MISREAD, note=self.note,
            hit_outcome=outcome)


def _asset(name: str) -> bytes:
    return resources.files("safeguards").joinpath("static", name).read_bytes()


def _sse(kind: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Console:
    """The console's state (feed, sessions) and its routes, over the safeguards."""

    def __init__(self, sg: Safeguards, *, idle_timeout_s: float = 900,
                 unsure_below: float = 0.8, backlog_ms: int = 12 * 3_600_000,
                 bootstrap: str | None = None, topic: str = "alpr.alerts",
                 clock: Callable[[], float] = time.monotonic, poll_s: float = 0.1) -> None:
        self.sg = sg
        self.feed = AlertFeed()
        self.sessions = Sessions(idle_timeout_s, clock)
        self.claims = ClaimService(sg.alerts, sg.gate)
        self.poll_s = poll_s
        self._generation = 0  # drop_streams() moves it: open streams then end
        self._list_times: tuple[float, dict[str, int | None]] = (0.0, {})
        self.follower = AlertFollower(
            bootstrap, topic, self.feed, sg.alerts, backlog_ms=backlog_ms,
            unsure_below=unsure_below, list_imported_at=self._list_imported_at,
        ) if bootstrap else None

    @classmethod
    def from_settings(cls, sg: Safeguards, settings: SafeguardSettings) -> Console:
        """The console of `alpr serve`: following `alpr.alerts` unless turned off."""
        return cls(sg, idle_timeout_s=settings.console_idle_timeout_s,
                   unsure_below=settings.console_unsure_below,
                   backlog_ms=int(settings.console_backlog_h * 3_600_000),
                   bootstrap=Settings().kafka_bootstrap if settings.console_kafka else None,
                   topic=Topics().alerts)

    def start(self) -> None:
        if self.follower is not None:
            self.follower.start()

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()

    def drop_streams(self) -> None:
        """End every open event stream (pages reconnect by themselves and resume from
        their last event): for a shutdown, and what a lost connection looks like."""
        self._generation += 1

    def _list_imported_at(self, source: str) -> int | None:
        """When the serving version of `source`'s list went live (cached 30 s)."""
        at, times = self._list_times
        if time.monotonic() - at > 30:
            try:
                times = {s.value: st.updated_at or st.imported_at
                         for s, st in self.sg.hotlists.status().items()}
            except Exception:  # the age is extra information, never a reason to drop
                times = {}
            self._list_times = (time.monotonic(), times)
        return times.get(source)

    def state_of(self, alert_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Claim and outcome of each alert, from the stores (what every console sees)."""
        claims = self.claims.claims_of(alert_ids)
        states: dict[str, dict[str, Any]] = {}
        for alert_id in alert_ids:
            claim = claims.get(alert_id)
            verification = self.sg.alerts.verification(alert_id)
            states[alert_id] = {
                "claimed_by": claim.name if claim else None,
                "claimed_by_id": claim.user_id if claim else None,
                "outcome": verification.outcome.value if verification else None,
                "hit_outcome": verification.hit_outcome if verification else None,
                "closed_by": verification.user_id if verification else None,
            }
        return states

    # --- routes --------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/console", tags=["console"])
        sessions = self.sessions

        def not_logged_in() -> JSONResponse:
            return JSONResponse({"error": "not_logged_in", "detail": "log in to the console "
                                 "(the session may have expired)"}, status_code=401,
                                headers=_NO_STORE)

        def client_of(request: Request) -> str:
            return request.client.host if request.client else ""

        @router.get("", include_in_schema=False)
        def page() -> Response:
            return Response(_asset("console.html"), media_type="text/html; charset=utf-8",
                            headers=_NO_STORE)

        @router.get("/static/{name}", include_in_schema=False)
        def asset(name: str) -> Response:
            if name not in _ASSETS:
                return JSONResponse({"error": "not_found", "detail": "no such file"},
                                    status_code=404)
            return Response(_asset(name), media_type=_ASSETS[name], headers=_NO_STORE)

        @router.post("/login")
        def login(request: Request, body: LoginRequest) -> JSONResponse:
            """Open a console session for a user with the dispatch role (audited)."""
            details = {"channel": "console", "client": client_of(request)}
            principal = self.sg.gate.admit(body.token, action=LOGIN_ACTION,
                                           role=Role.DISPATCH, details=details)
            user = self.sg.access.user(principal.user_id)
            name = user.name if user else principal.user_id
            self.sg.gate.record(actor=principal.user_id, agency=principal.agency_id,
                                action=LOGIN_ACTION, decision="allowed", details=details)
            cookie = sessions.open(body.token, principal.user_id, name, principal.roles)
            response = JSONResponse(self._me(sessions.get(cookie)), headers=_NO_STORE)
            response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/console")
            return response

        @router.get("/me")
        def me(cookie: CookieValue = None) -> JSONResponse:
            session = sessions.get(cookie)
            return (JSONResponse(self._me(session), headers=_NO_STORE) if session
                    else not_logged_in())

        @router.post("/touch")
        def touch(cookie: CookieValue = None) -> JSONResponse:
            session = sessions.get(cookie, touch=True)
            return (JSONResponse(self._me(session), headers=_NO_STORE) if session
                    else not_logged_in())

        @router.post("/logout")
        def logout(cookie: CookieValue = None) -> JSONResponse:
            sessions.close(cookie)
            response = JSONResponse({"ok": True}, headers=_NO_STORE)
            response.delete_cookie(COOKIE, path="/console")
            return response

        @router.get("/events")
        async def events(request: Request, cookie: CookieValue = None,
                         after: str | None = None) -> Response:
            """The alert feed as Server-Sent Events (resume with `Last-Event-ID`)."""
            session = sessions.get(cookie)
            if session is None:
                return not_logged_in()
            resume = request.headers.get("last-event-id") or after or ""
            return StreamingResponse(self._stream(request, cookie or "", resume),
                                     media_type="text/event-stream",
                                     headers={**_NO_STORE, "X-Accel-Buffering": "no"})

        @router.post("/alerts/{alert_id}/claim")
        def claim(request: Request, alert_id: Annotated[str, Path(max_length=64)],
                  cookie: CookieValue = None) -> JSONResponse:
            session = sessions.get(cookie, touch=True)
            if session is None:
                return not_logged_in()
            claimed = self.claims.claim(session.token, alert_id, client=client_of(request))
            self.feed.add_state(alert_id, self.state_of([alert_id])[alert_id])
            return JSONResponse(claimed.model_dump(mode="json"), headers=_NO_STORE)

        @router.post("/alerts/{alert_id}/outcome")
        def outcome(request: Request, alert_id: Annotated[str, Path(max_length=64)],
                    body: ConsoleOutcome, cookie: CookieValue = None) -> JSONResponse:
            session = sessions.get(cookie, touch=True)
            if session is None:
                return not_logged_in()
            details = {"alert_id": alert_id, **body.model_dump(mode="json"),
                       "channel": "console", "client": client_of(request)}
            gate = self.sg.gate
            principal = gate.admit(session.token, action=VERIFY_ACTION, role=Role.VERIFY,
                                   details=details)
            held = self.claims.claim_of(alert_id)
            if held is None or held.user_id != principal.user_id:
                gate.refuse(action=VERIFY_ACTION, code="not_claimed", status=409,
                            message="claim the alert before recording its outcome" if held
                            is None else f"{held.name} has claimed this alert",
                            details=details, actor=principal.user_id,
                            agency=principal.agency_id)
            if body.hit_outcome is not HitOutcome.MISREAD and not body.rechecked:
                gate.refuse(action=VERIFY_ACTION, code="recheck_required", status=422,
                            message="check the entry in NCIC/CCIC again now: a list can "
                            "still show a car that was recovered", details=details,
                            actor=principal.user_id, agency=principal.agency_id)
            verification = self.sg.verification.verify(
                session.token, alert_id, body.verification(), channel="console",
                client=client_of(request))
            self.feed.add_state(alert_id, self.state_of([alert_id])[alert_id])
            return JSONResponse(verification.model_dump(mode="json"), headers=_NO_STORE)

        return router

    def _me(self, session: Session | None) -> dict[str, Any]:
        assert session is not None
        return {"user_id": session.user_id, "name": session.name,
                "can_close": Role.VERIFY.value in session.roles,
                "idle_timeout_s": self.sessions.idle_timeout_s,
                "expires_in_s": round(self.sessions.expires_in(session), 1)}

    async def _stream(self, request: Request, cookie: str, resume: str) -> AsyncIterator[str]:
        feed = self.feed
        generation = self._generation
        epoch, _, seq_text = resume.partition(":")
        yield "retry: 1000\n\n"
        if epoch == feed.epoch and seq_text.isdigit():
            last = int(seq_text)
        else:
            # A new page (or a restarted server): every alert in the feed, with its state
            # now; what happens meanwhile follows from `last` on (the page drops repeats).
            last = feed.last_seq
            views = feed.alerts()
            states = await run_in_threadpool(self.state_of, [v["alert_id"] for v in views])
            for view in views:
                yield _sse("alert", {**view, "state": states[view["alert_id"]]})
        yield _sse("ready", {"epoch": feed.epoch}, f"{feed.epoch}:{last}")
        next_check = 0.0
        next_ping = time.monotonic() + 10
        while True:
            now = time.monotonic()
            if generation != self._generation:
                return
            if now >= next_check:
                if await request.is_disconnected():
                    return
                session = self.sessions.get(cookie)
                if session is None or not await run_in_threadpool(self._still_allowed,
                                                                  session.token):
                    self.sessions.close(cookie)
                    yield _sse("expired", {"detail": "the session ended"})
                    return
                next_check = now + 1.0
            events = feed.after(last)
            if events:
                ids = [e.alert_id for e in events if e.kind == "alert"]
                states = await run_in_threadpool(self.state_of, ids) if ids else {}
                for event in events:
                    data = ({**event.data, "state": states[event.alert_id]}
                            if event.kind == "alert" else event.data)
                    yield _sse(event.kind, data, f"{feed.epoch}:{event.seq}")
                last = events[-1].seq
            elif now >= next_ping:
                yield ": ping\n\n"
                next_ping = now + 10
            await asyncio.sleep(self.poll_s)

    def _still_allowed(self, token: str) -> bool:
        """A disabled user or agency loses the live feed at once, not at the next click."""
        try:
            principal = self.sg.access.authenticate(token)
        except AccessDeniedError:
            return False
        return Role.DISPATCH.value in principal.roles
