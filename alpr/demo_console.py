"""The dispatch console of `alpr demo`: the safeguards API (with `/console` and the
transparency portal) on a free loopback port, following the demo's `alpr.alerts`, and a
dispatcher login to open it with.

Demo only: the audit trail is a throwaway redis-server of its own (never the reads'
server: safeguards refuse that), which does not fsync every write, and the registry's
records are signed with a key made for this run (a site runs both as
safeguards/README.md says)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from kernel.ports import free_port
from kernel.redis_client import redis_from_url
from safeguards.access import Role
from safeguards.admin import Admin
from safeguards.admin_auth import RecordSigner
from safeguards.api import create_app
from safeguards.console import Console
from safeguards.settings import SafeguardSettings
from safeguards.wiring import Safeguards
from sim.local_services import LocalRedis

__all__ = ["DemoConsole", "dispatch_console"]

DEMO_USER = "dispatcher"


@dataclass(frozen=True)
class DemoConsole:
    url: str  # the console page
    user: str
    token: str

    def banner(self) -> str:
        return (f"demo: dispatch console at {self.url} (portal: {self.url.rsplit('/', 1)[0]}/)"
                f"\ndemo: log in as {self.user} with the token {self.token}")


@contextmanager
def dispatch_console(bootstrap: str, redis_url: str, alerts_topic: str,
                     port: int | None = None) -> Iterator[DemoConsole]:
    audit_server = LocalRedis()
    audit_server.start()
    client = redis_from_url(redis_url)
    sg = Safeguards.build(SafeguardSettings(), data=client,
                          audit=redis_from_url(audit_server.url), require_durable_audit=False,
                          signer=RecordSigner(secrets.token_bytes(32)))
    admin = Admin(sg.access, sg.audit, "demo")
    admin.ensure_defaults()
    owner = next(a.agency_id for a in sg.access.agencies() if a.kind == "owner")
    if sg.access.user(DEMO_USER) is None:
        _, token = admin.add_user(DEMO_USER, owner, name="Demo Dispatcher",
                                  roles=[Role.DISPATCH, Role.VERIFY])
    else:
        token = admin.rotate_token(DEMO_USER)
    console = Console(sg, bootstrap=bootstrap, topic=alerts_topic)
    console.start()
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(sg, console=console), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="demo-console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield DemoConsole(f"http://127.0.0.1:{port}/console", DEMO_USER, token)
    finally:
        console.drop_streams()
        server.should_exit = True
        thread.join(timeout=10)
        console.stop()
        audit_server.stop()
