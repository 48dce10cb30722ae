"""Running a call that a hung Redis could block, with a deadline the test enforces."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def finish_within(seconds: float, call: Callable[[], T]) -> T:
    """call() in a thread; fails if it has not ended after `seconds` (the thread then
    ends when the test thaws the server). An exception of call() is raised here."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            done.append(call())
        except BaseException as exc:  # re-raised in the test's thread
            failed.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still waiting on a hung Redis after {seconds} s"
    if failed:
        raise failed[0]
    return done[0]
