"""A bytewax worker thread keeps its thread-local state once keep_thread_state() ran.

Fed: 300 items through a 2-worker bytewax cluster (timely's threads, in this process);
each step counts its calls in a threading.local. Out: with keep_thread_state() first,
each worker's count goes 1, 2, 3... without a break (a recogniser loaded once stays
loaded); without it, bytewax's per-step thread state is deleted and the count restarts,
which is what reloaded the flow's recogniser every few seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main

from flows.worker_thread import keep_thread_state


def _count_restarts(before_each_step: Callable[[], None]) -> tuple[int, int]:
    """(steps seen, times a worker's thread-local count restarted)."""
    local = threading.local()
    seen: list[tuple[int, int]] = []

    def step(item: int) -> int:
        before_each_step()
        local.calls = getattr(local, "calls", 0) + 1
        seen.append((threading.get_ident(), local.calls))
        return item

    flow = Dataflow("thread_state")
    items = op.input("in", flow, TestingSource(range(300), batch_size=1))
    op.inspect("out", op.map("count", items, step), lambda *_: None)
    cluster_main(flow, [], 0, worker_count_per_proc=2)
    restarts = 0
    last: dict[int, int] = {}
    for thread, calls in seen:
        if calls != last.get(thread, 0) + 1:
            restarts += 1
        last[thread] = calls
    return len(seen), restarts


def test_kept_thread_state_keeps_thread_locals() -> None:
    steps, restarts = _count_restarts(keep_thread_state)
    assert steps == 300
    assert restarts == 0


def test_without_it_bytewax_workers_lose_thread_locals() -> None:
    """The reason for keep_thread_state: if this starts failing, bytewax no longer
    deletes its workers' thread states and the workaround may go."""
    steps, restarts = _count_restarts(lambda: None)
    assert steps == 300
    assert restarts > 0
