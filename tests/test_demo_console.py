"""`alpr demo`'s dispatch console: the address and login it prints open the console.

Fed: the demo console over a Redis and a broker, then its printed token to /console/login.
Must survive: the banner names the console's URL and the token, the token logs in (a
dispatcher who can close alerts), and the portal answers at `/`."""

from __future__ import annotations

import httpx
import pytest

from alpr.demo_console import dispatch_console

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_the_demo_prints_a_console_address_and_a_login_that_works(
        kafka: str, redis_server, unique_topic) -> None:
    url = redis_server.url_for(4)
    with dispatch_console(kafka, url, unique_topic("alerts")) as desk:
        banner = desk.banner()
        assert desk.url in banner and desk.token in banner and desk.url.endswith("/console")
        with httpx.Client() as http:
            assert http.get(desk.url).status_code == 200
            me = http.post(f"{desk.url}/login", json={"token": desk.token})
            assert me.status_code == 200 and me.json()["can_close"] is True
            assert http.get(desk.url.removesuffix("/console") + "/").status_code == 200
