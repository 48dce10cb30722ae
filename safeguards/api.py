"""HTTP API of the safeguards (FastAPI; the OpenAPI spec is at /openapi.json).

    POST /search                           guarded search (bearer token)
    POST /alerts/{alert_id}/verification   verify or dismiss an alert (bearer token)
    GET  /transparency                     public statistics, JSON
    GET  /transparency.html, /             the portal page (safeguards/portal.py)
    GET  /console                          the dispatch console (safeguards/console.py)
    GET  /healthz                          data and audit Redis reachable

Refusals are JSON `{"error": code, "detail": message, "audit_seq": n}`: 401 bad or
missing credentials, 403 not allowed (revoked, disabled, federal, no MOU, prohibited
purpose), 404, 409, 413 body over the limit, 422 malformed or outside policy, 429 over
the search budget, 503 audit trail or policy unavailable, or a Redis down or hung past
ALPR_REDIS_SOCKET_TIMEOUT_S (`redis_unavailable`; a body over the limit is 413 all the
same). Every refusal of the two protected endpoints is audited, including bodies too
large to read and JSON that does not parse.
The policy is read for each request: an edit applies from the next one.

Run: `python -m safeguards.api` or `alpr serve` (settings: ALPR_SG_* variables).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import redis
from fastapi import FastAPI, Header, Path, Request, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from safeguards.alerts import Verification
from safeguards.audit import Metric
from safeguards.console import Console
from safeguards.gate import Refusal
from safeguards.policy import DAY_MS, PolicyError
from safeguards.portal import add_public_pages
from safeguards.search import SearchRequest, SearchResponse
from safeguards.settings import SafeguardSettings
from safeguards.transparency import TransparencyReport
from safeguards.verification import VerificationRequest
from safeguards.wiring import Safeguards

__all__ = ["create_app", "main"]

log = logging.getLogger(__name__)

AGENCY_HEADER = "X-ALPR-Agency"
_bearer = HTTPBearer(auto_error=False, description="Token from `alpr user add`.")


Token = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
AgencyHeader = Annotated[str | None, Header(alias=AGENCY_HEADER, max_length=100,
                                            description="Optional: the agency id the caller "
                                            "acts for; must match the token's.")]


class ErrorBody(BaseModel):
    error: str
    detail: str
    audit_seq: int | None = None


_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        401: "Missing or invalid credentials", 403: "Not allowed", 413: "Body too large",
        422: "Malformed request or outside policy", 429: "Search budget exceeded",
        503: "Audit trail, policy or a Redis unavailable: try again later",
    }.items()
}


def _action_for(path: str) -> str:
    if path.rstrip("/") == "/search":
        return "search"
    if path.startswith("/alerts/") and path.rstrip("/").endswith("/verification"):
        return "alert_verification"
    return "http_request"


def _token_from_headers(headers: Any) -> str | None:
    auth = headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _refusal_response(refusal: Refusal) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
    return JSONResponse(refusal.body(), status_code=refusal.status, headers=headers)


def _redis_unavailable(method: str, path: str, exc: redis.RedisError) -> JSONResponse:
    """503 for a data or hotlist Redis that is down or hangs (its client times out: the
    same redis.RedisError). Not audited, as before (it was a 500). The audit trail's own
    failures never get here: the gate refuses them as `audit_unavailable`."""
    log.error("%s %s: Redis unavailable: %s", method, path, exc)
    return JSONResponse({"error": "redis_unavailable", "detail": "a Redis the API needs is "
                         "unreachable or did not answer in time", "audit_seq": None},
                        status_code=503)


def _refuse_unparsed(sg: Safeguards, *, token: str | None, path: str, client: str,
                     code: str, status: int, message: str, extra: dict[str, Any],
                     credentials_first: bool = True) -> Refusal:
    action = _action_for(path)
    metrics = (Metric.SEARCH_REFUSED.value,) if action == "search" else ()
    return sg.gate.refuse_unparsed(
        token, action=action, code=code, status=status, message=message, metrics=metrics,
        details={"path": path[:200], "client": client, "channel": "http", **extra},
        credentials_first=credentials_first)


class BodyLimit:
    """Refuse (413, audited) request bodies over `max_bytes`, declared or streamed.

    The body is buffered here, at most `max_bytes`, and replayed to the app: a chunked
    upload without Content-Length cannot slip past the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int,
                 refuse: Callable[[Scope, int], Awaitable[JSONResponse]]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = self.max_bytes + 1
            if size > self.max_bytes:
                await (await self.refuse(scope, size))(scope, receive, send)
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await (await self.refuse(scope, len(body)))(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(sg: Safeguards, *, max_body_bytes: int = 16 * 1024,
               console: Console | None = None, trusted_proxies: str = "") -> FastAPI:
    app = FastAPI(
        title="ALPR safeguards",
        version="1",
        description=__doc__,
        docs_url=None,  # served by add_public_pages from local files, not a CDN
        redoc_url=None,
    )
    app.state.safeguards = sg
    app.state.console = console

    def client_of(request: Request) -> str:
        return request.client.host if request.client else ""

    async def refuse_unparsed(method: str, path: str, **kwargs: Any) -> JSONResponse:
        try:
            refusal = await run_in_threadpool(_refuse_unparsed, sg, path=path, **kwargs)
        except redis.RedisError as exc:
            # Answered here: raised in the BodyLimit middleware, outside FastAPI's
            # exception handling, it was a bare 500 (from on_invalid it reaches
            # on_redis_unavailable, but only by the way Starlette nests its handlers).
            return _redis_unavailable(method, path, exc)
        return _refusal_response(refusal)

    async def refuse_too_large(scope: Scope, size: int) -> JSONResponse:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client") or ("", 0)
        return await refuse_unparsed(
            scope["method"], scope["path"], token=_token_from_headers(headers),
            client=client[0], code="request_too_large", status=413,
            message=f"request body over {max_body_bytes} bytes", extra={"body_bytes": size},
            # The body is never read, so 413 for everyone; the audit notes the login (or,
            # with the data Redis down, that it could not be checked).
            credentials_first=False)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, refuse=refuse_too_large)
    if proxies := [p.strip() for p in trusted_proxies.split(",") if p.strip()]:
        # X-Forwarded-For names the client (audited, throttled) only when the peer is a
        # configured proxy; from anyone else, a local process included, it is ignored.
        # Outermost, so every refusal sees the client it names.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)

    @app.exception_handler(Refusal)
    async def on_refusal(request: Request, exc: Refusal) -> JSONResponse:
        return _refusal_response(exc)

    @app.exception_handler(PolicyError)
    async def on_policy_unavailable(request: Request, exc: PolicyError) -> JSONResponse:
        # The public pages state the policy: none rather than a stale one. (The protected
        # endpoints never get here: their gate refuses, audited, as `policy_unavailable`.)
        return JSONResponse({"error": "policy_unavailable", "detail": "the policy cannot be "
                             "read, so it is not shown", "audit_seq": None}, status_code=503)

    @app.exception_handler(redis.RedisError)
    async def on_redis_unavailable(request: Request, exc: redis.RedisError) -> JSONResponse:
        return _redis_unavailable(request.method, request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = await request.body()
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type"),
                   "msg": e.get("msg")} for e in exc.errors()[:10]]
        # Credentials first: with the data Redis down they cannot be checked, so 503.
        return await refuse_unparsed(
            request.method, request.url.path, token=_token_from_headers(request.headers),
            client=client_of(request), code="invalid_request",
            status=422, message="malformed request: " + "; ".join(
                f"{'.'.join(e['loc'][1:]) if e['type'] != 'json_invalid' else 'body'}: {e['msg']}"
                for e in errors),
            extra={"errors": errors, "body_excerpt": body[:256].decode("utf-8", "replace"),
                   "body_bytes": len(body)})

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers a body it cannot even decode (invalid UTF-8, JSON nested too
        # deep for the parser) with a bare 400: on the protected endpoints that is a
        # refusal like any malformed body, audited.
        if exc.status_code != 400 or _action_for(request.url.path) == "http_request":
            return await http_exception_handler(request, exc)
        body = await request.body()
        return await refuse_unparsed(
            request.method, request.url.path, token=_token_from_headers(request.headers),
            client=client_of(request), code="unparsable_body", status=422,
            message="malformed request: the body cannot be decoded as JSON",
            extra={"body_excerpt": body[:256].decode("utf-8", "replace"),
                   "body_bytes": len(body)})

    @app.post("/search", response_model=SearchResponse, responses=_REFUSALS, tags=["search"])
    def search(request: Request, body: SearchRequest, credentials: Token,
               agency: AgencyHeader = None) -> SearchResponse:
        """Search retained reads by plate (exact or with wildcards) for a criminal case.

        Needs a case number, a reason and a permitted offence category. Results are
        capped; there is no paging and no query for all reads. Audited, allowed or not.
        """
        return sg.search.search(credentials.credentials if credentials else None, body,
                                channel="http", client=client_of(request),
                                claimed_agency=agency)

    @app.post("/alerts/{alert_id}/verification", response_model=Verification,
              responses={**_REFUSALS, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
              tags=["alerts"])
    def verify_alert(
        request: Request, alert_id: Annotated[str, Path(max_length=64)],
        body: VerificationRequest, credentials: Token, agency: AgencyHeader = None,
    ) -> Verification:
        """Record who verified or dismissed an alert and what NCIC/CCIC said."""
        return sg.verification.verify(credentials.credentials if credentials else None,
                                      alert_id, body, channel="http",
                                      client=client_of(request), claimed_agency=agency)

    @app.get("/transparency", response_model=TransparencyReport, tags=["transparency"])
    def transparency() -> TransparencyReport:
        """The public transparency statistics, computed now from live data."""
        return sg.transparency.report()

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        status: dict[str, Any] = {}
        try:
            status["data"] = bool(sg.data.ping())
            status["audit"] = bool(sg.audit.client.ping())
            status["audit_durability"] = sg.audit.durability()
        except Exception as exc:  # any failure means unhealthy
            # The error's class only: its text names the Redis address.
            return JSONResponse({"ok": False, "error": type(exc).__name__}, status_code=503)
        # Checked on every probe, not only at start: `CONFIG SET appendfsync no` on a
        # running audit Redis makes the API unhealthy at once.
        durable = status["audit_durability"] == {"appendonly": "yes", "appendfsync": "always"}
        return JSONResponse({"ok": durable, **status, "policy": _policy_status(sg)},
                            status_code=200 if durable else 503)

    add_public_pages(app, sg)
    if console is not None:
        app.include_router(console.router())
    return app


def _policy_status(sg: Safeguards) -> dict[str, Any]:
    """Whether the policy can be read, and the retention searches use against the one
    in the file: they differ after a retention edit until the API restarts."""
    try:
        policy = sg.policy
    except PolicyError:
        # Why is for the operator (`alpr agency list` says it), not this public page.
        return {"readable": False}
    stores_days = sg.reads.retention_ms / DAY_MS
    status: dict[str, Any] = {"readable": True, "retention_days": policy.retention_days,
                              "stores_retention_days": stores_days}
    if policy.retention_days != stores_days:
        status["restart_to_apply_retention"] = True
    return status


def build_app(settings: SafeguardSettings | None = None) -> FastAPI:
    settings = settings or SafeguardSettings()
    sg = Safeguards.build(settings)
    from safeguards.admin import Admin

    Admin(sg.access, sg.audit, "system:startup").ensure_defaults()
    # An expired read must not linger in the data Redis's AOF or snapshot.
    from safeguards.persistence import DiskSweeper

    DiskSweeper(sg.data, settings.disk_sweep_s).start()
    if settings.audit_head_file:
        # The head this run starts from, outside the audit Redis (and the file made).
        from safeguards.head_log import PublishedHeads

        PublishedHeads(settings.audit_head_file).publish(sg.audit.head())
    return create_app(sg, max_body_bytes=settings.max_body_bytes,
                      console=Console.from_settings(sg, settings),
                      trusted_proxies=settings.trusted_proxies)


def server_config(app: FastAPI, settings: SafeguardSettings) -> Any:
    """The uvicorn.Config `alpr serve` runs `app` with."""
    import uvicorn

    return uvicorn.Config(app, host=settings.host, port=settings.port,
                          # Headers and request lines are bounded too, not only bodies.
                          h11_max_incomplete_event_size=16 * 1024, log_level="info",
                          # uvicorn would trust X-Forwarded-For from 127.0.0.1: the app
                          # trusts only ALPR_SG_TRUSTED_PROXIES (create_app).
                          proxy_headers=False)


def main(settings: SafeguardSettings | None = None) -> None:
    import uvicorn

    settings = settings or SafeguardSettings()
    app = build_app(settings)
    app.state.console.start()  # follows alpr.alerts for the dispatch console
    try:
        uvicorn.Server(server_config(app, settings)).run()
    finally:
        app.state.console.stop()


if __name__ == "__main__":
    main()
