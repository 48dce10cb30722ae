"""Builders shared by the safeguards tests (and handy in a REPL): sample reads, hotlist
entries and alerts, a ready stack with users, and a snapshot of the data keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import redis

from kernel.contracts import Alert, HotlistEntry, HotlistSource, MatchInfo, PlateRead, stable_id
from kernel.contracts import make_alert as _make_alert
from safeguards import KEY_PREFIX
from safeguards.access import Role
from safeguards.admin import Admin
from safeguards.admin_auth import RecordSigner
from safeguards.policy import Policy
from safeguards.retention import now_ms
from safeguards.wiring import Safeguards

__all__ = ["TEST_SIGNER", "AdminFiles", "Stack", "build_stack", "data_snapshot", "make_alert",
           "make_entry", "make_read", "signed_edit"]

TEST_TOKEN_COST = 2**10
# The record key of the test stacks (a site's is in ALPR_SG_RECORD_KEY_FILE).
TEST_SIGNER = RecordSigner(b"k" * 32)
OWNER_ID = "denver-co-pd"
MOU_ID = "aurora-co-pd"


def make_read(plate: str, *, camera: str = "cam-1", at_ms: int | None = None,
              read_id: str | None = None, alertable: bool = True,
              confidence: float = 0.95) -> PlateRead:
    at = now_ms() if at_ms is None else at_ms
    return PlateRead(
        read_id=read_id or stable_id("read", camera, plate, at),
        plate=plate, confidence=confidence, char_confidences=[confidence] * len(plate),
        camera_id=camera, first_seen=at, last_seen=at + 400, frames_used=[f"f-{at}"],
        frame_count=3, alertable=alertable,
    )


def make_entry(plate: str, entry_id: str = "N1", *, source: HotlistSource = HotlistSource.NCIC,
               reason: str = "Stolen vehicle", expires_at: int | None = None) -> HotlistEntry:
    return HotlistEntry(plate=plate, source=source, reason=reason, entry_id=entry_id,
                        expires_at=expires_at)


def make_alert(read: PlateRead, entry: HotlistEntry, *, historical: bool = False) -> Alert:
    match = MatchInfo(hotlist_plate=entry.plate, read_plate=read.plate)
    alert = _make_alert(read, entry, match, now_ms())
    return alert.model_copy(update={"historical": historical}) if historical else alert


def data_snapshot(client: redis.Redis, prefix: str = KEY_PREFIX) -> dict[bytes, bytes | None]:
    """Every key of the safeguards but the audit trail and its counters, with its value
    (DUMP): equal snapshots mean a request changed no data."""
    skip = (f"{prefix}audit".encode(), f"{prefix}stats:".encode())
    keys = sorted(k for k in client.scan_iter(match=f"{prefix}*", count=1000)
                  if not k.startswith(skip))
    return {k: client.dump(k) for k in keys}


@dataclass(frozen=True)
class AdminFiles:
    """What `alpr admin keygen` / `alpr admin add root` leave for the tests."""

    record_key: Path
    admins: Path
    token_file: Path
    totp_secret: str


@dataclass
class Stack:
    sg: Safeguards
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def build_stack(data: redis.Redis, audit: redis.Redis, *, policy: Policy | None = None,
                retention_s: int | None = None, bucket_s: int | None = None) -> Stack:
    """Safeguards over the given Redis clients with default agencies and three users:
    `det` (Denver, search), `disp` (Denver, verify) and `aur` (Aurora MOU, search)."""
    # Cheap token hashes: the cost is not what these tests are about (and is stored with
    # each hash, so verification is the production code path).
    sg = Safeguards.build(data=data, audit=audit, policy=policy, retention_s=retention_s,
                          bucket_s=bucket_s, token_cost=TEST_TOKEN_COST,
                          signer=TEST_SIGNER)
    admin = Admin(sg.access, sg.audit, "test")
    admin.ensure_defaults()
    stack = Stack(sg)
    for user, agency, roles in (("det", OWNER_ID, [Role.SEARCH]),
                                ("disp", OWNER_ID, [Role.VERIFY]),
                                ("aur", MOU_ID, [Role.SEARCH])):
        _, stack.tokens[user] = admin.add_user(user, agency, roles=roles)
    return stack


def signed_edit(data: redis.Redis, record_kind: str, record_id: str, **fields: str) -> None:
    """Edit an agency or user record straight in Redis and sign it with the test record
    key: what someone holding the key could do, so the checks behind the signature are
    still tested."""
    key = f"{KEY_PREFIX}{record_kind}:{record_id}"
    row = {k.decode(): v.decode() for k, v in data.hgetall(key).items()}
    data.hset(key, mapping=TEST_SIGNER.sign(record_kind, record_id, {**row, **fields}))
