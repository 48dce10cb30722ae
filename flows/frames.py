"""Decoding and validating alpr.frames messages.

A message that cannot be used becomes a DeadLetter carrying its reason and, when small
enough, the original bytes: nothing is dropped silently and the flow never stops on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import ValidationError

from kernel.contracts import (
    HEADER_CAMERA_ID,
    OPTIONAL_FRAME_HEADERS,
    REQUIRED_FRAME_HEADERS,
    SCHEMA_VERSION,
    DeadLetter,
    FrameMeta,
    b64,
)

# Originals up to this size travel inside the dead letter; larger ones by reference
# (topic, partition, offset) so the dead-letter topic stays small.
DEAD_LETTER_INLINE_BYTES = 256 * 1024
MIN_SIDE_PX = 64  # smaller images cannot hold a readable plate


@dataclass(frozen=True)
class RawFrame:
    """Just the parts of a Kafka message the flow needs (picklable, broker-neutral)."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class DecodedFrame:
    meta: FrameMeta
    image: np.ndarray
    jpeg_bytes: int


class FrameRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _header_dict(raw: RawFrame) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw.headers:
        try:
            out[name] = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            out[name] = value.decode("latin-1")
    return out


def parse_meta(raw: RawFrame) -> FrameMeta:
    headers = _header_dict(raw)
    missing = [h for h in REQUIRED_FRAME_HEADERS if not headers.get(h)]
    if missing:
        raise FrameRejected("missing_header", f"required header(s) absent: {', '.join(missing)}")
    version = headers.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise FrameRejected("unsupported_schema", f"schema_version {version!r}")
    key = (raw.key or b"").decode("utf-8", "replace")
    if key and key != headers[HEADER_CAMERA_ID]:
        raise FrameRejected(
            "key_mismatch", f"key {key!r} differs from camera_id {headers[HEADER_CAMERA_ID]!r}"
        )
    fields: dict[str, object] = {h: headers[h] for h in REQUIRED_FRAME_HEADERS}
    fields.update({h: headers[h] for h in OPTIONAL_FRAME_HEADERS if headers.get(h)})
    try:
        return FrameMeta.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise FrameRejected("bad_header", problems) from exc


def decode_frame(raw: RawFrame, max_bytes: int) -> DecodedFrame:
    """Validate headers and decode the JPEG, or raise FrameRejected with the reason."""
    meta = parse_meta(raw)
    value = raw.value or b""
    if not value:
        raise FrameRejected("empty_frame", "message has no image bytes")
    if len(value) > max_bytes:
        raise FrameRejected("oversized_frame", f"{len(value)} bytes > limit {max_bytes}")
    image = cv2.imdecode(np.frombuffer(value, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameRejected("corrupt_jpeg", f"{len(value)} bytes do not decode as an image")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE_PX:
        raise FrameRejected("image_too_small", f"{width}x{height}")
    return DecodedFrame(meta=meta, image=image, jpeg_bytes=len(value))


def dead_letter(raw: RawFrame, reason: str, detail: str) -> DeadLetter:
    value = raw.value or b""
    inline = len(value) <= DEAD_LETTER_INLINE_BYTES
    return DeadLetter(
        reason=reason,
        detail=detail,
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=(raw.key or b"").decode("utf-8", "replace") or None,
        headers=_header_dict(raw),
        value_b64=b64(value) if inline else None,
        value_bytes=len(value),
        at=int(time.time() * 1000),
    )
