"""The audit trail: append-only, kept indefinitely, durable and tamper-evident.

Each record is {seq, ts, actor, agency, action, details, decision, prev_hash, hash} with
`hash = sha256(canonical JSON of every other field)`; `prev_hash` is the previous
record's hash (64 zeros for the first), so editing, removing or reordering a record
breaks the chain at that point. Key layout (prefix `alpr:sg:`):

    audit              STREAM  field `r` = the record JSON; never trimmed
    audit:head         STRING  "{seq} {ts} {hash}" of the last record
    audit:policy       STRING  the access terms last recorded (`policy_audit`)
    stats:{metric}     ZSET    seq (an outcome: r{request_seq}) -> ts, last 30 days:
                               counters for the transparency page

Appends run one Lua script that checks the head is still the one the record was
chained to, then XADDs the record, moves the head and bumps the counters, all in one
step; a writer that lost the race re-chains and retries. So records are gap-free and
ordered under any number of concurrent writers. (The hash is computed in Python: Redis
Lua has no SHA-256.)

A timed-out append never lands later: a hung Redis still runs, once it resumes, a
command its client gave up on, which would put on the trail a record the caller was
told failed (and acted on: a verification undone, a search refused). So each script
carries a deadline in the server's own clock (its TIME when the head was read, plus
most of the client's socket timeout) and writes nothing when it starts after it. A
record can still land with its reply lost (a dropped connection, a reply slower than
the margin): `append_undone` covers the one caller that undoes a change then.

Durability: the audit Redis runs with `appendonly yes` and `appendfsync always`: Redis
fsyncs the AOF before it answers, so a record the caller saw succeed survives a crash
or restart. `ensure_durable()` checks the server says so. Truncating the tail cannot be
hidden by the chain alone: the head key catches it unless rewritten too, and `head()`
is meant to be copied out regularly (e.g. with each export) to an oversight body, whose
copy any later rewrite would contradict.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from safeguards import KEY_PREFIX
from safeguards.retention import now_ms

__all__ = [
    "GENESIS_HASH",
    "OUTCOME_UNKNOWN",
    "REQUESTED",
    "UNDONE",
    "Anchor",
    "AuditError",
    "AuditIssue",
    "AuditLog",
    "AuditNotDurableError",
    "AuditRecord",
    "Metric",
    "VerifyReport",
    "canonical_json",
]

GENESIS_HASH = "0" * 64
# Write-ahead: a change to the data is recorded as REQUESTED before it is made, then by
# its outcome (naming the request's seq in `details.request_seq`); a change that failed
# or timed out gets OUTCOME_UNKNOWN, best effort.
REQUESTED = "requested"
OUTCOME_UNKNOWN = "failed:outcome_unknown"
# A change that was made, then undone because its outcome record could not be written
# (the caller was told it failed); names the request, follows any outcome that landed.
UNDONE = "undone"
STATS_WINDOW_MS = 30 * 86_400_000
_MAX_ATTEMPTS = 500
# The share of the client's socket timeout a script may start within, counted from the
# server's TIME read just before it was sent: the rest is for the reply to get back
# before the client gives up.
_DEADLINE_SHARE = 0.8

# KEYS: stream, head, [append_if's key], stats keys. ARGV: 1 genesis head, 2 the head the
# record is chained to, 3 record JSON, 4 new head, 5 ts, 6 the member it is counted as,
# 7 stats cut-off, 8 deadline (server clock, microseconds; 0 = none), 9 mode: 'append',
# 'if' (append_if: only while KEYS[3] holds ARGV[10], '' = unset; it then holds
# ARGV[11]) or 'undo' (take member ARGV[6] back out of the stats keys instead).
# Redis >= 5 (TIME before a write needs script effects replication).
_APPEND = """
local now = redis.call('TIME')
local deadline = tonumber(ARGV[8])
if deadline > 0 and tonumber(now[1]) * 1000000 + tonumber(now[2]) > deadline then
    return {3, ''}
end
local first_stat = 3
if ARGV[9] == 'if' then
    local seen = redis.call('GET', KEYS[3]) or ''
    if seen ~= ARGV[10] then return {2, seen} end
    first_stat = 4
end
local head = redis.call('GET', KEYS[2])
if not head then
    if redis.call('EXISTS', KEYS[1]) == 1 then
        return redis.error_reply('ALPR_AUDIT_BROKEN audit head missing while records exist')
    end
    head = ARGV[1]
end
if head ~= ARGV[2] then return {0, head, now[1], now[2]} end
redis.call('XADD', KEYS[1], '*', 'r', ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
if ARGV[9] == 'if' then redis.call('SET', KEYS[3], ARGV[11]) end
for i = first_stat, #KEYS do
    if ARGV[9] == 'undo' then
        redis.call('ZREM', KEYS[i], ARGV[6])
    else
        redis.call('ZADD', KEYS[i], ARGV[5], ARGV[6])
        redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[7])
    end
end
return {1, head}
"""


class Metric(StrEnum):
    """Counters kept next to the audit trail (30 days) for the transparency page."""

    SEARCH_ALLOWED = "search_allowed"
    SEARCH_REFUSED = "search_refused"
    ALERT_VERIFIED = "alert_verified"
    ALERT_DISMISSED = "alert_dismissed"


class AuditError(RuntimeError):
    """The audit trail could not record (unreachable, broken head, contention)."""


class AuditNotDurableError(AuditError):
    """The audit Redis does not fsync every write to its AOF."""


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def _counted_as(details: dict[str, Any], seq: int) -> str:
    """The member a record is counted as under its metrics: the outcome of a write-ahead
    request (`details.request_seq`) by that request, so an `undone` record can take the
    count back without knowing which seq the outcome got; any other record by its seq."""
    request_seq = details.get("request_seq")
    return f"r{request_seq}" if isinstance(request_seq, int) else str(seq)


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    ts: int  # epoch ms
    actor: str
    agency: str
    action: str
    details: dict[str, Any]
    decision: str
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude={"hash"})

    def expected_hash(self) -> str:
        return _hash(self.body())

    @property
    def time_utc(self) -> str:
        return datetime.fromtimestamp(self.ts / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class AuditIssue:
    kind: str  # edited | reordered | deleted
    seq: int
    detail: str


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    head_seq: int = 0
    issues: list[AuditIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def first(self) -> AuditIssue | None:
        return min(self.issues, key=lambda i: i.seq) if self.issues else None


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    ts: int
    hash: str

    def encode(self) -> str:
        return f"{self.seq} {self.ts} {self.hash}"

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Head:
        if raw is None:
            return GENESIS
        seq, ts, digest = (raw.decode() if isinstance(raw, bytes) else raw).split()
        return cls(int(seq), int(ts), digest)


GENESIS = Head(0, 0, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class Anchor:
    """One record's seq and hash, copied out of the audit Redis (`alpr audit head`, the
    line `alpr audit export` prints) and kept by an oversight body. The chain alone
    cannot show a cut tail whose head key was rewritten, or a whole trail replaced; a
    verify against an anchor can: that record must still be there, unchanged."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """"seq=N hash=H" (as printed) or "N:H"."""
        m = (re.search(r"seq=(\d+)\s+hash=([0-9a-f]{64})\b", text)
             or re.fullmatch(r"\s*(\d+):([0-9a-f]{64})\s*", text))
        if m is None or int(m.group(1)) < 1:
            raise ValueError("an anchor is 'seq=N hash=<64 hex digits>' as printed by "
                             "`alpr audit head`, or 'N:<hash>'")
        return cls(int(m.group(1)), m.group(2))

# Columns of the CSV export; the search fields are flattened out of `details` because
# oversight bodies read them most.
CSV_COLUMNS = (
    "seq", "time_utc", "actor", "agency", "action", "decision", "case_number", "offence",
    "reason", "query", "result_count", "details_json", "prev_hash", "hash",
)


def _csv_cell(value: Any) -> str:
    """Text for a CSV cell; a leading = + - @ is defused (spreadsheet formula injection:
    reasons and queries are typed by users)."""
    text = value if isinstance(value, str) else canonical_json(value) if value is not None else ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class AuditLog:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], int] = now_ms,
        on_head: Callable[[Head], None] | None = None,
    ) -> None:
        self.client = client
        # Told each new head (`head_log.PublishedHeads.after_append`): a copy outside.
        self.on_head = on_head
        self.stream_key = f"{prefix}audit"
        self.head_key = f"{prefix}audit:head"
        self._stats_prefix = f"{prefix}stats:"
        self._clock = clock
        self._script = client.register_script(_APPEND)

    # --- durability --------------------------------------------------------------------

    def durability(self) -> dict[str, str]:
        """The server's appendonly / appendfsync settings ("unknown" if CONFIG is off)."""
        try:
            conf = self.client.config_get("append*")
        except redis.ResponseError:
            return {"appendonly": "unknown", "appendfsync": "unknown"}
        text = {(k.decode() if isinstance(k, bytes) else k):
                (v.decode() if isinstance(v, bytes) else v) for k, v in conf.items()}
        return {"appendonly": text.get("appendonly", "unknown"),
                "appendfsync": text.get("appendfsync", "unknown")}

    def ensure_durable(self) -> None:
        conf = self.durability()
        if conf != {"appendonly": "yes", "appendfsync": "always"}:
            raise AuditNotDurableError(
                f"audit Redis runs with {conf}: it needs appendonly yes and appendfsync "
                "always so no acknowledged audit record can be lost"
            )

    # --- writing -----------------------------------------------------------------------

    def append(
        self,
        *,
        actor: str,
        agency: str,
        action: str,
        decision: str,
        details: dict[str, Any] | None = None,
        metrics: Sequence[str] = (),
    ) -> AuditRecord:
        """Append one record (and count it under `metrics`); raises AuditError if it
        cannot, in which case the caller must not carry out what it was recording."""
        record = self._append(actor, agency, action, decision, details, metrics, None)
        assert record is not None  # only a guarded append can be skipped
        return record

    def append_if(
        self,
        key: str,
        expected: str,
        new: str,
        *,
        actor: str,
        agency: str,
        action: str,
        decision: str,
        details: dict[str, Any] | None = None,
    ) -> AuditRecord | None:
        """Append one record only while the string `key` (in the audit Redis) holds
        `expected` ("" = unset), and set it to `new` in the same atomic step. None (and
        nothing written) when it holds something else: another writer recorded first.
        Used to record a change exactly once however many processes notice it."""
        return self._append(actor, agency, action, decision, details, (),
                            (key, expected, new))

    def append_failed(self, request: AuditRecord, exc: BaseException) -> AuditRecord | None:
        """Best effort, after the change the write-ahead record `request` announced
        failed or timed out: say so, naming that record. Its outcome is unknown (a hung
        Redis may still carry the change out when it resumes, which `request` covers).
        None if the trail cannot take this record either."""
        try:
            return self.append(actor=request.actor, agency=request.agency,
                               action=request.action, decision=OUTCOME_UNKNOWN,
                               details=_follow_up(request, exc))
        except AuditError:
            return None

    def append_undone(self, request: AuditRecord, exc: BaseException, *, undid: str,
                      metrics: Sequence[str] = ()) -> AuditRecord | None:
        """Best effort, after the change the write-ahead record `request` announced was
        made and then undone because its outcome record (`undid`, counted under
        `metrics`) could not be written: say so, naming that record. Should that
        outcome have landed all the same (its reply lost), it precedes this record, and
        its count under `metrics` is taken back in the same step, so the trail reads
        requested -> undid -> undone and the statistics do not count it. (One that
        timed out cannot land later: see the deadline.) None if the trail cannot take
        this record either; it then ends at `request`, a "maybe" the data answers."""
        try:
            return self._append(request.actor, request.agency, request.action, UNDONE,
                                _follow_up(request, exc, undid=undid), metrics, None,
                                undo=True)
        except AuditError:
            return None

    def _deadline(self, server_us: int) -> int:
        """The server time (microseconds) after which an append sent now must not run:
        its client may have given up by then. 0 (none) for a client without a timeout."""
        pool = getattr(self.client, "connection_pool", None)
        timeout = getattr(pool, "connection_kwargs", {}).get("socket_timeout")
        return server_us + int(timeout * _DEADLINE_SHARE * 1_000_000) if timeout else 0

    def _append(
        self, actor: str, agency: str, action: str, decision: str,
        details: dict[str, Any] | None, metrics: Sequence[str],
        guard: tuple[str, str, str] | None, *, undo: bool = False,
    ) -> AuditRecord | None:
        # Round-trip so the stored details are exactly what the hash covers.
        clean = json.loads(json.dumps(details or {}, default=str))
        keys = [self.stream_key, self.head_key, *([guard[0]] if guard else []),
                *(self._stats_prefix + m for m in metrics)]
        mode_args = ["if", guard[1], guard[2]] if guard else ["undo" if undo else "append"]
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.head_key)
            pipe.time()
            raw_head, (sec, usec) = pipe.execute()
            head, server_us = Head.decode(raw_head), sec * 1_000_000 + usec
            for _ in range(_MAX_ATTEMPTS):
                ts = max(self._clock(), head.ts)  # timestamps never go backwards
                body = {"seq": head.seq + 1, "ts": ts, "actor": actor, "agency": agency,
                        "action": action, "details": clean, "decision": decision,
                        "prev_hash": head.hash}
                record = AuditRecord(**body, hash=_hash(body))
                new_head = Head(record.seq, ts, record.hash)
                reply = self._script(
                    keys=keys,
                    args=[GENESIS.encode(), head.encode(), canonical_json(record.model_dump()),
                          new_head.encode(), ts, _counted_as(clean, record.seq),
                          ts - STATS_WINDOW_MS, self._deadline(server_us), *mode_args],
                )
                if reply[0] == 1:
                    if self.on_head is not None:
                        self.on_head(new_head)
                    return record
                if reply[0] == 2:
                    return None
                if reply[0] == 3:
                    raise AuditError("audit trail unavailable: the audit Redis took too "
                                     "long to run the append, which was not written")
                head, server_us = Head.decode(reply[1]), int(reply[2]) * 1_000_000 + int(
                    reply[3])
                time.sleep(random.random() / 1000)  # another writer won: re-chain
        except redis.RedisError as exc:
            raise AuditError(f"audit trail unavailable: {exc}") from exc
        raise AuditError("audit append lost the race too many times")

    # --- reading -----------------------------------------------------------------------

    def head(self) -> Head:
        return Head.decode(self.client.get(self.head_key))

    def _raw(self, start: str = "-", batch: int = 1000) -> Iterator[tuple[str, bytes | None]]:
        """(stream id, raw record) in stream order."""
        cursor = start
        exclusive = False
        while True:
            rows = self.client.xrange(self.stream_key, ("(" if exclusive else "") + cursor,
                                      "+", count=batch)
            if not rows:
                return
            for sid, fields in rows:
                yield (sid.decode() if isinstance(sid, bytes) else sid,
                       fields.get(b"r", fields.get("r")))
            cursor = rows[-1][0].decode() if isinstance(rows[-1][0], bytes) else rows[-1][0]
            exclusive = True

    def records(self, since_ms: int | None = None) -> Iterator[AuditRecord]:
        """Records in order; with `since_ms`, those stamped at or after it."""
        # Stream ids carry the Redis server's clock, records the writer's: start a day
        # early so clock skew between hosts cannot hide a record, then filter on ts.
        start = "-" if since_ms is None else f"{max(0, since_ms - 86_400_000)}-0"
        for _, raw in self._raw(start):
            record = AuditRecord.model_validate_json(raw or b"")
            if since_ms is None or record.ts >= since_ms:
                yield record

    def count(self, metric: str, start_ms: int, end_ms: int | None = None) -> int:
        """Records counted under `metric` in [start, end] (last 30 days at most)."""
        end = "+inf" if end_ms is None else end_ms
        return int(self.client.zcount(self._stats_prefix + metric, start_ms, end))

    # --- verification ------------------------------------------------------------------

    def verify(self, anchors: Sequence[Anchor] = ()) -> VerifyReport:
        """Walk the whole chain; report every edited, reordered or deleted record, and
        every anchor whose record is gone or differs."""
        report = VerifyReport()
        anchored = {a.seq: "" for a in anchors}  # seq -> stored hash found
        expected = 1
        recent: dict[int, str] = {}  # seq -> stored hash, for link checks
        skipped: dict[int, int] = {}  # seq missing where expected -> position
        last: AuditRecord | None = None
        for position, (sid, raw) in enumerate(self._raw(), start=1):
            report.records += 1
            try:
                record = AuditRecord.model_validate_json(raw or b"")
            except ValidationError:
                report.issues.append(AuditIssue(
                    "edited", expected, f"stream entry {sid} (position {position}) is not a "
                    "valid audit record"))
                expected += 1
                continue
            seq = record.seq
            if record.expected_hash() != record.hash:
                report.issues.append(AuditIssue(
                    "edited", seq, f"record {seq} does not match its own hash"))
            if seq == expected:
                prev = GENESIS_HASH if seq == 1 else recent.get(seq - 1)
                if prev is not None and record.prev_hash != prev:
                    report.issues.append(AuditIssue(
                        "edited", seq - 1, f"record {seq - 1} is not the record that {seq} "
                        "was chained to (changed and re-hashed)"))
                expected = seq + 1
            elif seq > expected:
                for missing in range(expected, seq):
                    skipped[missing] = position
                expected = seq + 1
            elif seq in skipped:
                del skipped[seq]
                report.issues.append(AuditIssue(
                    "reordered", seq, f"record {seq} appears after later records "
                    f"(position {position})"))
            else:
                report.issues.append(AuditIssue(
                    "reordered", seq, f"record {seq} appears twice (again at position "
                    f"{position})"))
            recent[seq] = record.hash
            if seq in anchored and not anchored[seq]:
                anchored[seq] = record.hash
            if len(recent) > 4096:
                recent.pop(next(iter(recent)))
            last = record
        for missing, position in skipped.items():
            report.issues.append(AuditIssue(
                "deleted", missing, f"record {missing} is missing (before position {position})"))
        head = self.head()
        report.head_seq = head.seq
        last_seq = last.seq if last else 0
        if head.seq > last_seq:
            report.issues.append(AuditIssue(
                "deleted", last_seq + 1, f"records {last_seq + 1}..{head.seq} after the last "
                "stored record are missing (head says the chain is longer)"))
        elif last is not None and head.seq == last.seq and head.hash != last.hash:
            report.issues.append(AuditIssue(
                "edited", last.seq, f"record {last.seq} is not the last record written"))
        elif last is not None and head.seq < last_seq:
            report.issues.append(AuditIssue(
                "edited", head.seq + 1, f"records after {head.seq} were added outside the "
                "audit log"))
        for anchor in anchors:
            found = anchored[anchor.seq]
            if not found:
                report.issues.append(AuditIssue(
                    "deleted", anchor.seq, f"record {anchor.seq}, which the anchor names, is "
                    "missing: the trail was cut or replaced"))
            elif found != anchor.hash:
                report.issues.append(AuditIssue(
                    "edited", anchor.seq, f"record {anchor.seq} differs from the anchored "
                    "copy: the trail was rewritten"))
        return report

    # --- export ------------------------------------------------------------------------

    def export_csv(self, out: IO[str], since_ms: int | None = None) -> int:
        """Write records stamped at or after `since_ms` as CSV; returns the row count."""
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        rows = 0
        for rec in self.records(since_ms):
            d = rec.details
            writer.writerow([
                rec.seq, rec.time_utc, _csv_cell(rec.actor), _csv_cell(rec.agency),
                rec.action, rec.decision, _csv_cell(d.get("case_number")),
                _csv_cell(d.get("offence")), _csv_cell(d.get("reason")),
                _csv_cell(d.get("query")), d.get("result_count", ""),
                canonical_json(d), rec.prev_hash, rec.hash,
            ])
            rows += 1
        return rows


def _follow_up(request: AuditRecord, exc: BaseException, **more: str) -> dict[str, Any]:
    """Details of a record that follows up the write-ahead record `request`: which
    record it names, why (the error, cut to 500 characters), and `more`."""
    return {"request_seq": request.seq, **more, "error": f"{type(exc).__name__}: {exc}"[:500]}
