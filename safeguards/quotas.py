"""Daily read caps across searches: per case, per user and per agency.

The per-search cap (`max_results`) alone lets a searcher take everything by slicing the
window into pieces. These caps count the distinct reads released in a UTC day: a read
already released to a case, user or agency costs it nothing again (repeating a search is
free), a new one is released only while every cap has room. One Lua step decides and
records, so parallel searches cannot overshoot together.

Keys (data Redis, prefix `alpr:sg:`): `quota:{case|user|agency}:{who}:{day}` SETs of
read ids (opaque ids, never plates), expiring two days after they are first written.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from safeguards import KEY_PREFIX
from safeguards.access import Principal
from safeguards.policy import DAY_MS, Policy
from safeguards.retention import now_ms

__all__ = ["DailyReadQuota", "Released"]

CAPS = ("case", "user", "agency")
_TTL_S = 2 * 86_400

# KEYS: the day's sets, in CAPS order; ARGV[1..#KEYS]: their caps; then the read ids.
# Returns {released ids, indexes (1-based) of the caps that withheld a read}.
_RELEASE = """
local n = #KEYS
local released, withheld = {}, {}
for i = n + 1, #ARGV do
  local id, ok = ARGV[i], true
  for k = 1, n do
    if redis.call('SISMEMBER', KEYS[k], id) == 0
       and redis.call('SCARD', KEYS[k]) >= tonumber(ARGV[k]) then
      ok = false
      withheld[k] = 1
    end
  end
  if ok then
    for k = 1, n do
      if redis.call('SADD', KEYS[k], id) == 1 and redis.call('TTL', KEYS[k]) < 0 then
        redis.call('EXPIRE', KEYS[k], TTL_S)
      end
    end
    released[#released + 1] = id
  end
end
local caps = {}
for k = 1, n do if withheld[k] then caps[#caps + 1] = k end end
return {released, caps}
""".replace("TTL_S", str(_TTL_S))


@dataclass(frozen=True, slots=True)
class Released:
    read_ids: frozenset[str]
    withheld_by: tuple[str, ...]  # the caps (CAPS names) that held a read back


class DailyReadQuota:
    def __init__(self, client: redis.Redis, *, prefix: str = KEY_PREFIX) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_RELEASE)

    def release(self, principal: Principal, case_number: str, read_ids: list[str],
                policy: Policy) -> Released:
        """Which of `read_ids` (in order of preference) may be released today."""
        if not read_ids:
            return Released(frozenset(), ())
        day = now_ms() // DAY_MS
        case = f"{principal.agency_id}:{case_number.strip().upper()}"
        keys = [f"{self._prefix}quota:case:{case}:{day}",
                f"{self._prefix}quota:user:{principal.user_id}:{day}",
                f"{self._prefix}quota:agency:{principal.agency_id}:{day}"]
        caps = [policy.max_reads_per_case_per_day, policy.max_reads_per_user_per_day,
                policy.max_reads_per_agency_per_day]
        released, withheld = self._script(keys=keys, args=[*caps, *read_ids])
        return Released(frozenset(r.decode() if isinstance(r, bytes) else r for r in released),
                        tuple(CAPS[int(k) - 1] for k in withheld))
