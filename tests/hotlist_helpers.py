"""Helpers shared by the hotlist tests (imported by name: pytest puts tests/ on the path)."""

from __future__ import annotations

import redis

from kernel.contracts import HotlistEntry, HotlistSource


def entry(plate: str, entry_id: str, source: HotlistSource = HotlistSource.NCIC,
          **kw: object) -> HotlistEntry:  # fmt: skip
    """A hotlist entry with a default reason ("stolen"); other fields as keywords."""
    return HotlistEntry(
        plate=plate, source=source, entry_id=entry_id, reason=str(kw.pop("reason", "stolen")),
        **kw,  # type: ignore[arg-type]
    )


def version_keys(client: redis.Redis, source: HotlistSource) -> set[str]:
    """Versions that have keys in Redis, e.g. {"v3"}."""
    keys = (k.decode() for k in client.scan_iter(match=f"alpr:hl:{source}:v*:*", count=1000))
    return {k.split(":")[3] for k in keys}
