"""Message contracts of the Kafka topics, versioned.

Every record that leaves the flow is one of these models serialised as JSON. Consumers
(dispatch consoles, the retention store, oversight tools) should check `schema_version`
and ignore fields they do not know. Changing the meaning of a field means a new version.
"""

from __future__ import annotations

import base64
import hashlib
import json
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"

# Frame headers on alpr.frames (the value is the JPEG bytes, the key the camera id).
HEADER_CAMERA_ID = "camera_id"
HEADER_CAPTURED_AT = "captured_at"  # epoch milliseconds, as ASCII digits
HEADER_FRAME_ID = "frame_id"
HEADER_SCHEMA = "schema_version"
OPTIONAL_FRAME_HEADERS = ("lat", "lon", "heading", "lane")
REQUIRED_FRAME_HEADERS = (HEADER_CAMERA_ID, HEADER_CAPTURED_AT, HEADER_FRAME_ID)

VERIFY_INSTRUCTION = (
    "Hotlist hit - VERIFICATION REQUIRED before any action: compare the plate image with "
    "the read, then confirm the entry is still active in NCIC/CCIC (hits can be hours "
    "stale). An ALPR hit alone is not probable cause."
)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class FrameMeta(_Record):
    """What the headers of one alpr.frames message say."""

    camera_id: str
    captured_at: int = Field(description="epoch ms when the camera took the frame")
    frame_id: str
    schema_version: str = SCHEMA_VERSION
    lat: float | None = None
    lon: float | None = None
    heading: float | None = None
    lane: str | None = None
    # Set by the flow, never from a header: this flow read the frame before a restart.
    replayed: bool = False


class PlateRead(_Record):
    """One alpr.reads record: the voted read of one vehicle pass past one camera."""

    schema_version: str = SCHEMA_VERSION
    read_id: str
    plate: str
    state: str | None = Field(
        None, description="issuing state read from the plate's own text (two letters)")
    state_confidence: float | None = Field(
        None, description="0..1; hotlist matching uses the state only when sure")
    confidence: float
    char_confidences: list[float]
    camera_id: str
    first_seen: int
    last_seen: int
    frames_used: list[str]
    frame_count: int
    crop_jpeg_b64: str = ""
    lat: float | None = None
    lon: float | None = None
    heading: float | None = None
    lane: str | None = None
    alertable: bool = Field(
        True, description="False when confidence is below the alert threshold: reported only"
    )
    replayed: bool = Field(False, description=(
        "True when the flow re-read this pass's frames after a restart or crash: it may "
        "have been published before, with the same read_id"))


class HotlistSource(StrEnum):
    NCIC = "NCIC"
    NCMEC = "NCMEC"
    CCIC = "CCIC"
    LOCAL = "LOCAL"


class HotlistEntry(_Record):
    plate: str
    state: str | None = None
    source: HotlistSource
    reason: str
    entry_id: str
    priority: int = Field(2, ge=1, le=5, description="1 = most urgent (Amber alert)")
    expires_at: int | None = Field(None, description="epoch ms; never matches after this")
    effective_at: int | None = Field(None, description="epoch ms; never matches before this")
    category: str | None = None


class MatchInfo(_Record):
    method: Literal["exact", "ocr_equivalent", "fuzzy"] = "exact"
    hotlist_plate: str
    read_plate: str
    differing_positions: list[int] = Field(default_factory=list)
    read_state: str | None = None
    entry_state: str | None = None
    state_agrees: bool | None = Field(
        None, description="None when the read or the entry has no state: check it by eye")


class AlertStatus(StrEnum):
    VERIFICATION_REQUIRED = "VERIFICATION_REQUIRED"


class Alert(_Record):
    schema_version: str = SCHEMA_VERSION
    alert_id: str
    status: AlertStatus = AlertStatus.VERIFICATION_REQUIRED
    historical: bool = False
    replayed: bool = Field(False, description=(
        "True when its read was replayed after a restart or crash: it may have been "
        "published before, with the same alert_id; its latency is not the system's"))
    read: PlateRead
    entry: HotlistEntry
    match: MatchInfo
    instruction: str = VERIFY_INSTRUCTION
    produced_at: int = Field(description="epoch ms when the flow produced the alert")
    latency_ms: int = Field(description="produced_at minus the read's last frame capture")


class DeadLetter(_Record):
    schema_version: str = SCHEMA_VERSION
    reason: str = Field(description="machine-readable cause, e.g. corrupt_jpeg")
    detail: str
    topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    value_b64: str | None = Field(None, description="the original value when small enough")
    value_bytes: int = 0
    at: int


def stable_id(*parts: object) -> str:
    """A short deterministic id: the same parts give the same id on every replay."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()
    return digest[:32]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def alert_id(read: PlateRead, entry: HotlistEntry) -> str:
    """Same read, same entry: same id, so a replayed alert can be dropped downstream (the
    real-time join and historical hits give the same id to the same hit)."""
    return stable_id("alert", read.read_id, entry.source.value, entry.entry_id)


def make_alert(read: PlateRead, entry: HotlistEntry, match: MatchInfo, produced: int) -> Alert:
    """The alert of `read` matching `entry`, produced at epoch ms `produced`."""
    # Read state against entry state: a same-serial plate of another state is a known
    # cause of wrong stops, so the dispatcher sees whether they agree.
    agrees = read.state == entry.state if read.state and entry.state else None
    return Alert(
        alert_id=alert_id(read, entry),
        read=read,
        entry=entry,
        match=match.model_copy(update={
            "read_state": read.state, "entry_state": entry.state, "state_agrees": agrees}),
        produced_at=produced,
        latency_ms=max(0, produced - read.last_seen),
        replayed=read.replayed,
    )
