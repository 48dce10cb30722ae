"""Headless Chromium (Debian's package, never a downloaded build) driven by Playwright, and
the API served by a real uvicorn on a free loopback port, for the browser tests.

`make test` installs chromium with apt-get when /usr/bin/chromium is missing; where apt
cannot, `.venv/chromium-missing` says why and the browser tests skip with that reason
(in CI a missing browser fails them instead)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from tool_paths import find_tool

from kernel.ports import free_port

# No first-run, sync, update or background traffic: the tests reach loopback only.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
# Where the tests save their screenshots when asked (docs/ for the README's pictures).
SCREENSHOTS = os.environ.get("ALPR_SCREENSHOTS_DIR", "")


def chromium_path() -> str:
    return find_tool("chromium", env="CHROMIUM", marker="chromium-missing",
                     how="installs Debian's chromium package with apt-get")


@contextmanager
def launched_browser() -> Iterator[object]:
    """A headless Chromium of the system, through Playwright's own driver."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield p, browser
        finally:
            browser.close()


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """`app` on a real uvicorn (HTTP/1.1, SSE, HEAD as a browser sends them); its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def screenshot(page: object, name: str, *, full_page: bool = False) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / name),  # type: ignore[attr-defined]
                        full_page=full_page)
