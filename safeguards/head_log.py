"""The audit chain's head, published outside the audit Redis as it grows.

A hash chain shows an edit, a reordering or a deletion inside it, but not a trail wiped
or replaced by a new, consistent chain, nor a cut tail whose head key was moved back:
only a copy of an earlier head kept elsewhere does. So every audit writer appends the
head to a file of its own (`ALPR_SG_AUDIT_HEAD_FILE`), at most once per
`ALPR_SG_AUDIT_HEAD_PUBLISH_S`, one line `seq=N hash=H ts=T` each, opened append-only
and fsynced; `alpr serve` publishes the head it starts with. `alpr audit verify` checks
every published line by default: each record must still be in the trail, unchanged.

Make the file append-only for the writers (`chattr +a`, or a path on a WORM or
remote-logging mount) and copy it off the host: whoever can rewrite it can hide a
replaced trail again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from safeguards.audit import Anchor, Head

__all__ = ["PublishedHeads"]

log = logging.getLogger(__name__)


class PublishedHeads:
    def __init__(self, path: Path, every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.every_s = every_s
        self._clock = clock
        self._last = -1e18
        self._lock = threading.Lock()

    def publish(self, head: Head) -> None:
        """Append `head` (OSError if the file cannot be written)."""
        line = f"seq={head.seq} hash={head.hash} ts={head.ts}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)  # one short write with O_APPEND: whole lines, any writers
            os.fsync(fd)
        finally:
            os.close(fd)

    def after_append(self, head: Head) -> None:
        """Publish `head` if the last publication is `every_s` old; a failure is logged,
        never raised (the record is written: refusing it now would lie)."""
        with self._lock:
            now = self._clock()
            if now - self._last < self.every_s:
                return
            self._last = now
        try:
            self.publish(head)
        except OSError as exc:
            log.error("cannot publish the audit head to %s: %s", self.path, exc)

    def anchors(self) -> list[Anchor]:
        """Every head published so far (ValueError naming the line if one is not one)."""
        anchors = []
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        anchors.append(Anchor.parse(line))
                    except ValueError as exc:
                        raise ValueError(f"{self.path}:{number}: {exc}") from exc
        return anchors
