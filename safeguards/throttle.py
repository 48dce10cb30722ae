"""Failed-login throttling: per client address and per claimed user, bounded memory.

A token that fails (unknown user, wrong secret, expired, unsigned record) counts
against the address it came from and the user id it claims. Past a limit within the
lock-out period, that address or user is refused (429 `login_throttled`, audited) before
any scrypt is spent, until the period has passed since its first counted failure. A
valid login clears its user's count (CJIS 5.5.3 counts consecutive failures); an
address's count only expires.

In memory, per API process: at most `max_keys` counters, the least recently failed
dropped first, so a flood of made-up user ids cannot exhaust memory (its address is
still counted).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FailedLogins"]


class FailedLogins:
    def __init__(self, *, per_client: int = 30, per_user: int = 5, lockout_s: float = 600.0,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"client": per_client, "user": per_user}
        self._lockout_s = lockout_s
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    @staticmethod
    def keys(client: str, claimed_user: str) -> list[tuple[str, str]]:
        return [k for k in (("client", client), ("user", claimed_user)) if k[1]]

    def blocked(self, keys: list[tuple[str, str]]) -> str:
        """The kind ("client" or "user") that is locked out now, or ""."""
        now = self._clock()
        with self._lock:
            for key in keys:
                first, count = self._counts.get(key, (now, 0))
                if now - first < self._lockout_s and count >= self._limits[key[0]]:
                    return key[0]
        return ""

    def failed(self, keys: list[tuple[str, str]]) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                first, count = self._counts.pop(key, (now, 0))
                if now - first >= self._lockout_s:
                    first, count = now, 0
                self._counts[key] = (first, count + 1)  # most recent last
            while len(self._counts) > self._max_keys:
                self._counts.popitem(last=False)

    def succeeded(self, user_id: str) -> None:
        with self._lock:
            self._counts.pop(("user", user_id), None)

    def __len__(self) -> int:
        return len(self._counts)
