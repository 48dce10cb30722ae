"""The retained reads: every read and every index that can find it expire with retention.

Key layout (prefix `alpr:sg:`; `{b}` is the index bucket, capture time // bucket width):

    read:{read_id}              STRING  the PlateRead JSON, PXAT capture + retention
    rb:{b}:t                    ZSET    read_id -> capture ms      (by time)
    rb:{b}:plates               ZSET    plate -> 0                 (plates seen, lex order)
    rb:{b}:p:{PLATE}            ZSET    read_id -> capture ms      (by plate)
    rb:{b}:c:{CAMERA}           ZSET    read_id -> capture ms      (by camera)
    rb:{b}:cams                 ZSET    camera -> last capture ms  (cameras reporting)

Every `rb:{b}:*` key expires at the end of its bucket + retention, so an index member
outlives its read by at most one bucket width, never longer. Meanwhile nothing can find
it: a read's expiry is a function of its index score (capture + retention), so every
query keeps only scores inside the retention window, and reads are fetched by key, which
Redis has already expired. The capture time is clamped to "now" so a camera with a
clock in the future cannot stretch retention.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import redis
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from connectors.kafka import ensure_topics
from kernel.contracts import PlateRead
from kernel.plate_text import normalise_plate
from kernel.settings import Topics
from safeguards import KEY_PREFIX
from safeguards.patterns import PlatePattern
from safeguards.policy import DAY_S, MAX_RETENTION_DAYS, Policy

__all__ = [
    "FindResult",
    "ReadStore",
    "RetentionError",
    "check_retention",
    "ensure_retention_topics",
    "now_ms",
    "plate_data_topics",
    "topic_retention_config",
    "topic_retention_ms",
]

# A wildcard pattern that matches more distinct plates than this in one bucket is cut
# short (and reported truncated): the search is for a vehicle, not a survey.
MAX_PLATES_PER_BUCKET = 2000
# Index lookups per pipeline (one network round trip): a whole 30-day exact-plate search
# over hourly buckets (720) fits in one; the bound keeps a narrow ALPR_SG_INDEX_BUCKET_S
# from building one huge request.
LOOKUPS_PER_TRIP = 1024
# A wildcard search lists the plates of this many buckets first (a day of hourly
# buckets), then chunks 8 times larger up to LOOKUPS_PER_TRIP.
FIRST_LISTING_CHUNK = 24


def now_ms() -> int:
    return int(time.time() * 1000)


class RetentionError(ValueError):
    """A retention longer than the policy allows."""


@dataclass(frozen=True, slots=True)
class FindResult:
    reads: list[PlateRead]
    truncated: bool  # more reads matched than were returned
    buckets_scanned: int = 0
    plates_matched: int = 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def check_retention(retention_s: int, bucket_s: int, max_retention_s: int) -> None:
    """Refuse a store's retention outside (0, max_retention_s] (RetentionError) or an
    index bucket that is not positive (ValueError). Reads and alerts share it."""
    if retention_s <= 0:
        raise RetentionError("retention must be positive")
    if retention_s > max_retention_s:
        raise RetentionError(
            f"retention of {retention_s / DAY_S:g} days exceeds the allowed "
            f"{max_retention_s / DAY_S:g} days (policy: allow_retention_above_30_days)"
        )
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")


_Listed = tuple[int, tuple[list[str], bool]]  # (bucket, (its matching plates, cut))


def _lookup_groups(listed: Sequence[_Listed]) -> Iterator[list[_Listed]]:
    """Consecutive buckets with about LOOKUPS_PER_TRIP plates to look up between them
    (one pipeline each); a bucket is never split, so a group holds at most
    LOOKUPS_PER_TRIP + MAX_PLATES_PER_BUCKET lookups."""
    group: list[_Listed] = []
    lookups = 0
    for row in listed:
        group.append(row)
        lookups += len(row[1][0])
        if lookups >= LOOKUPS_PER_TRIP:
            yield group
            group, lookups = [], 0
    if group:
        yield group


class ReadStore:
    """Plate reads kept `retention_s` after capture, found by plate, camera and time."""

    def __init__(
        self,
        client: redis.Redis,
        retention_s: int = MAX_RETENTION_DAYS * DAY_S,
        *,
        bucket_s: int = 3600,
        max_retention_s: int = MAX_RETENTION_DAYS * DAY_S,
        prefix: str = KEY_PREFIX,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        check_retention(retention_s, bucket_s, max_retention_s)
        self.client = client
        self.retention_ms = retention_s * 1000
        self.bucket_ms = bucket_s * 1000
        self.prefix = prefix
        self._clock = clock

    @classmethod
    def from_policy(cls, client: redis.Redis, policy: Policy, **kwargs: object) -> ReadStore:
        return cls(client, policy.retention_s, max_retention_s=policy.max_retention_s,
                   **kwargs)  # type: ignore[arg-type]

    def retention_in_force_ms(self, policy: Policy) -> int:
        """What a request under `policy` may search back: the policy's retention, never
        more than this store keeps (its keys expire with the retention it was built
        with), so a cut applies to the next search and a raise cannot outrun the data."""
        return min(policy.retention_s * 1000, self.retention_ms)

    # --- keys --------------------------------------------------------------------------

    def read_key(self, read_id: str) -> str:
        return f"{self.prefix}read:{read_id}"

    def _bucket(self, b: int, suffix: str) -> str:
        return f"{self.prefix}rb:{b}:{suffix}"

    def window(self, start_ms: int | None = None, end_ms: int | None = None) -> tuple[int, int]:
        """The part of [start, end] (capture ms, inclusive) that is still retained."""
        now = self._clock()
        lo = now - self.retention_ms + 1
        return max(lo, start_ms if start_ms is not None else lo), min(
            now, end_ms if end_ms is not None else now
        )

    def _buckets(self, lo: int, hi: int) -> range:
        """Buckets overlapping [lo, hi], newest first."""
        return range(hi // self.bucket_ms, lo // self.bucket_ms - 1, -1)

    # --- writing -----------------------------------------------------------------------

    def put(self, read: PlateRead) -> bool:
        """Store one read; False when it is already past retention (never stored)."""
        return self.put_many([read]) == 1

    def put_many(self, reads: Iterable[PlateRead]) -> int:
        """Store reads in one transaction; returns how many were stored."""
        now = self._clock()
        pipe = self.client.pipeline(transaction=True)
        stored = 0
        for read in reads:
            ts = min(read.first_seen, now)
            expire_at = ts + self.retention_ms
            if expire_at <= now:
                continue
            b = ts // self.bucket_ms
            bucket_expiry = (b + 1) * self.bucket_ms + self.retention_ms
            plate = normalise_plate(read.plate)
            pipe.set(self.read_key(read.read_id), read.model_dump_json(), pxat=expire_at)
            index: list[tuple[str, dict[str, int]]] = [
                (self._bucket(b, "t"), {read.read_id: ts}),
                (self._bucket(b, "plates"), {plate: 0}),
                (self._bucket(b, f"p:{plate}"), {read.read_id: ts}),
                (self._bucket(b, f"c:{read.camera_id}"), {read.read_id: ts}),
            ]
            for key, members in index:
                pipe.zadd(key, members)
                pipe.pexpireat(key, bucket_expiry)
            cams = self._bucket(b, "cams")
            pipe.zadd(cams, {read.camera_id: ts}, gt=True)  # GT still adds new members
            pipe.pexpireat(cams, bucket_expiry)
            stored += 1
        if stored:
            pipe.execute()
        return stored

    # --- reading -----------------------------------------------------------------------

    def get(self, read_id: str) -> PlateRead | None:
        raw = self.client.get(self.read_key(read_id))
        return None if raw is None else PlateRead.model_validate_json(raw)

    def find(
        self,
        pattern: PlatePattern,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        cameras: Sequence[str] = (),
        limit: int = 200,
    ) -> FindResult:
        """Retained reads whose plate matches `pattern`, newest first, at most `limit`."""
        lo, hi = self.window(start_ms, end_ms)
        if lo > hi or limit <= 0:
            return FindResult([], False)
        if pattern.is_exact:
            candidates, scanned = self._exact_candidates(pattern.text, lo, hi, cameras, limit)
            truncated, matched = False, scanned  # one plate looked up per bucket
        else:
            candidates, truncated, scanned, matched = self._pattern_candidates(
                pattern, lo, hi, cameras, limit)
        candidates.sort(reverse=True)
        if len(candidates) > limit:
            truncated = True
            candidates = candidates[:limit]
        reads = self._fetch([rid for _, rid in candidates])
        # Belt and braces: the fetched record itself must match and be retained.
        reads = [
            r for r in reads
            if pattern.matches(normalise_plate(r.plate)) and min(r.first_seen, hi) >= lo
        ]
        return FindResult(reads, truncated, scanned, matched)

    def _exact_candidates(
        self, plate: str, lo: int, hi: int, cameras: Sequence[str], limit: int
    ) -> tuple[list[tuple[int, str]], int]:
        """(capture ms, read id) of one plate's reads in [lo, hi], and buckets scanned.
        One pipeline per LOOKUPS_PER_TRIP buckets instead of one round trip per
        bucket: a 30-day search was ~720 sequential round trips."""
        buckets = list(self._buckets(lo, hi))
        candidates: list[tuple[int, str]] = []
        scanned = 0
        for i in range(0, len(buckets), LOOKUPS_PER_TRIP):
            part = buckets[i:i + LOOKUPS_PER_TRIP]
            scanned += len(part)
            pipe = self.client.pipeline(transaction=False)
            for b in part:
                pipe.zrangebyscore(self._bucket(b, f"p:{plate}"), lo, hi, withscores=True)
            found = {b: [(int(score), _text(rid)) for rid, score in rows]
                     for b, rows in zip(part, pipe.execute(), strict=True) if rows}
            if cameras and found:
                found = self._at_cameras(found, cameras)
            candidates.extend(row for rows in found.values() for row in rows)
            # Buckets go newest first and a bucket's scores lie inside it: once past
            # `limit`, older buckets cannot make it in (same cut as the pattern path).
            if len(candidates) > limit:
                break
        return candidates, scanned

    def _pattern_candidates(
        self, pattern: PlatePattern, lo: int, hi: int, cameras: Sequence[str], limit: int
    ) -> tuple[list[tuple[int, str]], bool, int, int]:
        """Like _exact_candidates for a wildcard pattern: each bucket's matching plates
        are listed, then their reads looked up. Both steps are batched over buckets (a
        30-day search went bucket by bucket, ~1,440 round trips): the plate lists of a
        chunk of buckets in one pipeline, their lookups in pipelines of about
        LOOKUPS_PER_TRIP. Buckets are then walked newest first with the same cut (and
        the same counts) as bucket by bucket; lookups past the cut are discarded."""
        buckets = list(self._buckets(lo, hi))
        candidates: list[tuple[int, str]] = []
        truncated = False
        scanned = matched = 0
        start, size = 0, FIRST_LISTING_CHUNK
        while start < len(buckets):
            part = buckets[start:start + size]
            # Chunks grow so a common pattern (cut within the first day) lists and looks
            # up little it then drops, and a rare one needs 3 chunks for 30 days.
            start, size = start + size, min(size * 8, LOOKUPS_PER_TRIP)
            listed = list(zip(part, self._plates(part, pattern), strict=True))
            for group in _lookup_groups(listed):
                pipe = self.client.pipeline(transaction=False)
                for b, (plates, _) in group:
                    for plate in plates:
                        pipe.zrangebyscore(self._bucket(b, f"p:{plate}"), lo, hi,
                                           withscores=True)
                rows = iter(pipe.execute())
                found: dict[int, list[tuple[int, str]]] = {}
                for b, (plates, _) in group:
                    hits = [(int(score), _text(rid)) for _ in plates
                            for rid, score in next(rows)]
                    if hits:
                        found[b] = hits
                if cameras and found:
                    found = self._at_cameras(found, cameras)
                for b, (plates, cut) in group:
                    scanned += 1
                    truncated |= cut
                    matched += len(plates)
                    candidates.extend(found.get(b, ()))
                    if len(candidates) > limit:  # older buckets cannot make it in
                        return candidates, truncated, scanned, matched
        return candidates, truncated, scanned, matched

    def _plates(
        self, buckets: Sequence[int], pattern: PlatePattern
    ) -> list[tuple[list[str], bool]]:
        """Each bucket's plates matching a wildcard pattern, and whether its list was cut
        at MAX_PLATES_PER_BUCKET: one pipeline for all the buckets (one per ZSCAN round
        without a literal prefix). Exact plates never get here: find looks them up."""
        keys = [self._bucket(b, "plates") for b in buckets]
        prefix = pattern.literal_prefix
        if prefix:
            low = b"[" + prefix.encode()
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.zrangebylex(key, low, low + b"\xff", start=0,
                                 num=MAX_PLATES_PER_BUCKET + 1)
            names = [[_text(p) for p in raw] for raw in pipe.execute()]
        else:
            names = self._scan_plates(keys, pattern.glob)
        return [([p for p in found[:MAX_PLATES_PER_BUCKET] if pattern.matches(p)],
                 len(found) > MAX_PLATES_PER_BUCKET) for found in names]

    def _scan_plates(self, keys: Sequence[str], glob: str) -> list[list[str]]:
        """ZSCAN every key with `glob`, all keys' next page in one pipeline per round,
        until each is done or past MAX_PLATES_PER_BUCKET (each key sees the same pages,
        in the same order, as scanning it alone)."""
        names: list[list[str]] = [[] for _ in keys]
        cursors = dict.fromkeys(range(len(keys)), 0)
        while cursors:
            todo = list(cursors.items())
            pipe = self.client.pipeline(transaction=False)
            for i, cursor in todo:
                pipe.zscan(keys[i], cursor, match=glob, count=1000)
            for (i, _), (cursor, rows) in zip(todo, pipe.execute(), strict=True):
                names[i].extend(_text(member) for member, _ in rows)
                if int(cursor) == 0 or len(names[i]) > MAX_PLATES_PER_BUCKET:
                    del cursors[i]
                else:
                    cursors[i] = int(cursor)
        return names

    def _at_cameras(
        self, found: dict[int, list[tuple[int, str]]], cameras: Sequence[str]
    ) -> dict[int, list[tuple[int, str]]]:
        """Keep the reads (by bucket) taken at one of `cameras`: one pipeline for all."""
        pipe = self.client.pipeline(transaction=False)
        for b, rows in found.items():
            ids = [rid for _, rid in rows]
            for cam in cameras:
                pipe.zmscore(self._bucket(b, f"c:{cam}"), ids)
        scores = iter(pipe.execute())
        kept: dict[int, list[tuple[int, str]]] = {}
        for b, rows in found.items():
            columns = [next(scores) for _ in cameras]
            hits = [any(s is not None for s in col) for col in zip(*columns, strict=True)]
            kept[b] = [row for row, hit in zip(rows, hits, strict=True) if hit]
        return kept

    def _fetch(self, read_ids: list[str]) -> list[PlateRead]:
        if not read_ids:
            return []
        raws = self.client.mget([self.read_key(rid) for rid in read_ids])
        # Missing values: expired (or deleted) between the index scan and the fetch.
        return [PlateRead.model_validate_json(raw) for raw in raws if raw is not None]

    def count_reads(self, start_ms: int | None = None, end_ms: int | None = None) -> int:
        """Reads captured in the window that are still retained."""
        lo, hi = self.window(start_ms, end_ms)
        if lo > hi:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for b in self._buckets(lo, hi):
            pipe.zcount(self._bucket(b, "t"), lo, hi)
        return int(sum(pipe.execute()))

    def cameras(self, start_ms: int | None = None, end_ms: int | None = None) -> set[str]:
        """Cameras with at least one retained read in the window."""
        lo, hi = self.window(start_ms, end_ms)
        if lo > hi:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for b in self._buckets(lo, hi):
            pipe.zrangebyscore(self._bucket(b, "cams"), lo, hi)
        return {_text(c) for rows in pipe.execute() for c in rows}

    def reads_for_plate(self, plate: str, *, limit: int = 1000) -> list[PlateRead]:
        """All retained reads of one exact plate, newest first."""
        return self.find(PlatePattern(normalise_plate(plate)), limit=limit).reads

    def plates_by_bucket(self, *, buckets_per_trip: int = 48) -> Iterator[tuple[int, list[str]]]:
        """(bucket, distinct plates read in it) for every retained bucket, newest first.

        Historical hits match these against the hotlists: the work grows with the plates
        of the retention window, not with the size of a hotlist update.
        """
        lo, hi = self.window()
        buckets = list(self._buckets(lo, hi))
        for i in range(0, len(buckets), buckets_per_trip):
            part = buckets[i:i + buckets_per_trip]
            pipe = self.client.pipeline(transaction=False)
            for b in part:
                pipe.zrange(self._bucket(b, "plates"), 0, -1)
            for b, plates in zip(part, pipe.execute(), strict=True):
                if plates:
                    yield b, [_text(p) for p in plates]

    def reads_in_bucket(self, bucket: int, plates: Sequence[str]) -> list[PlateRead]:
        """Retained reads of these exact (normalised) plates captured in one bucket."""
        lo, hi = self.window()
        if lo > hi or not plates:
            return []
        pipe = self.client.pipeline(transaction=False)
        for plate in plates:
            pipe.zrangebyscore(self._bucket(bucket, f"p:{plate}"), lo, hi)
        return self._fetch([_text(rid) for rows in pipe.execute() for rid in rows])


# --- Kafka topic retention -------------------------------------------------------------


def topic_retention_config(policy: Policy) -> dict[str, str]:
    """Topic config keeping records no longer than the policy's retention."""
    return {"retention.ms": str(policy.retention_s * 1000)}


def plate_data_topics(topics: Topics) -> list[str]:
    """Every topic that carries plates: camera frames (images of them), reads, alerts
    and the dead letters (refused frames and records, whole). None may keep longer
    than the policy's retention."""
    return [topics.frames, topics.reads, topics.alerts, topics.dead_letters]


def ensure_retention_topics(
    bootstrap: str, policy: Policy, topics: Sequence[str], partitions: int = 8,
    timeout: float = 15,
) -> dict[str, int]:
    """Create `topics` with the policy's retention; lower it on topics that keep longer.

    Returns {topic: retention.ms} as the broker reports it afterwards. An existing topic
    with a longer (or infinite, -1) retention is altered, never left as it was.
    """
    wanted = int(topic_retention_config(policy)["retention.ms"])
    ensure_topics(bootstrap, list(topics), partitions=partitions,
                  config=topic_retention_config(policy), timeout=timeout)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    current = topic_retention_ms(admin, topics, timeout)
    too_long = [t for t, ms in current.items() if ms < 0 or ms > wanted]
    if too_long:
        resources = [
            ConfigResource(ResourceType.TOPIC, t, incremental_configs=[ConfigEntry(
                "retention.ms", str(wanted), incremental_operation=AlterConfigOpType.SET)])
            for t in too_long
        ]
        for fut in admin.incremental_alter_configs(resources).values():
            fut.result(timeout=timeout)
        current = topic_retention_ms(admin, topics, timeout)
    return current


def topic_retention_ms(admin: AdminClient, topics: Sequence[str], timeout: float) -> dict[str, int]:
    """{topic: retention.ms} as the broker reports it (-1: kept forever)."""
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, t) for t in topics])
    out: dict[str, int] = {}
    for resource, fut in futures.items():
        entry = fut.result(timeout=timeout).get("retention.ms")
        out[resource.name] = int(entry.value) if entry is not None and entry.value else -1
    return out
