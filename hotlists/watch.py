"""Watch a drop folder and import each new file (NCIC refreshes twice a day; Amber alerts
arrive any time).

A file is taken once its modification time is `settle_s` old (a file still being
written by FTP keeps changing it). What was imported is remembered by (size, mtime) in a
small JSON state file in the folder, so a restart does not re-import and a re-dropped
file with new content is imported again.

For sources a file replaces (NCIC, CCIC, agency lists) only the newest new file matters:
older ones that piled up while the watcher was down are marked superseded, not imported.
Amber alert files are all imported, oldest first.

A file whose content is refused (too many bad rows, empty, truncated) is remembered as
failed and not retried until it changes; a failure of Redis or the lock is retried at
the next poll. A file imported whose hotlist-update event was not published is not
retried either: the warning names the `alpr hotlist republish` to run.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from hotlists.import_run import ImportFailedError, ImportOutcomeUnknownError, ImportReport
from hotlists.store import ImportInProgressError, ImportLockLostError

__all__ = ["FolderWatcher", "WatchOutcome"]

log = logging.getLogger(__name__)

# Causes worth another try at the next poll (the file itself may be fine). An unknown
# outcome too: if its version did go live, importing the file again serves the same
# entries.
_TRANSIENT = (redis.RedisError, ImportInProgressError, ImportLockLostError,
              ImportOutcomeUnknownError, OSError)


@dataclass(frozen=True, slots=True)
class WatchOutcome:
    path: Path
    status: str  # imported, failed, superseded, retry
    report: ImportReport | None = None
    error: str | None = None


class FolderWatcher:
    def __init__(
        self,
        folder: str | Path,
        import_file: Callable[[Path], ImportReport],
        *,
        replaces: bool,
        pattern: str = "*",
        settle_s: float = 5.0,
        state_name: str = ".alpr-hotlist-watch.json",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise NotADirectoryError(f"{self.folder} is not a folder")
        self.import_file = import_file
        self.replaces = replaces
        self.pattern = pattern
        self.settle_s = settle_s
        self.state_path = self.folder / state_name
        self.clock = clock
        self.state: dict[str, dict[str, Any]] = self._load_state()

    def poll(self) -> list[WatchOutcome]:
        """Import what is new and settled; returns what happened to each file."""
        fresh = [(p, fp) for p, fp in self._settled_files() if self.state.get(p.name, {})
                 .get("fingerprint") != fp]
        outcomes: list[WatchOutcome] = []
        if self.replaces and len(fresh) > 1:
            for path, fp in fresh[:-1]:
                self._remember(path, fp, "superseded")
                outcomes.append(WatchOutcome(path, "superseded"))
            fresh = fresh[-1:]
        for path, fp in fresh:
            outcome = self._import(path)
            if outcome.status != "retry":
                self._remember(path, fp, outcome.status, outcome.error)
            outcomes.append(outcome)
        return outcomes

    def run(self, interval_s: float, stop: threading.Event | None = None) -> None:
        """Poll every interval_s until `stop` is set (or forever)."""
        stop = stop or threading.Event()
        log.info("watching %s for %s every %.0f s", self.folder, self.pattern, interval_s)
        while not stop.is_set():
            for outcome in self.poll():
                # With an error (a failure, a retry, an import whose event was not
                # published), a warning: the importer leaves saying it to its caller.
                log.log(logging.WARNING if outcome.error else logging.INFO, "%s: %s%s",
                        outcome.path.name, outcome.status,
                        f" ({outcome.error})" if outcome.error else "")
            stop.wait(interval_s)

    def _import(self, path: Path) -> WatchOutcome:
        try:
            report = self.import_file(path)
        except ImportFailedError as exc:
            cause = exc.__cause__
            if isinstance(cause, _TRANSIENT):
                return WatchOutcome(path, "retry", exc.report, str(exc))
            return WatchOutcome(path, "failed", exc.report, str(exc))
        except _TRANSIENT as exc:
            return WatchOutcome(path, "retry", None, f"{type(exc).__name__}: {exc}")
        if report.event_published is False:
            # Live, but historical hits will miss it until the event is out: not a retry
            # (compared with what is now live, the import would announce nothing new).
            after = "Redis" if report.event_failed_on == "redis" else "Kafka"
            return WatchOutcome(path, "imported", report,
                                f"hotlist-update event not published: {report.event_error}; "
                                f"run `alpr hotlist republish --source {report.format}` "
                                f"once {after} answers")
        return WatchOutcome(path, "imported", report)

    def _settled_files(self) -> list[tuple[Path, list[int]]]:
        """Candidate files, oldest first, with their (size, mtime_ns) fingerprint."""
        now = self.clock()
        found: list[tuple[int, str, Path, list[int]]] = []
        for path in self.folder.glob(self.pattern):
            if path.name.startswith(".") or not path.is_file():
                continue
            st = path.stat()
            if now - st.st_mtime < self.settle_s:
                continue  # still being written, perhaps
            found.append((st.st_mtime_ns, path.name, path, [st.st_size, st.st_mtime_ns]))
        found.sort()
        return [(path, fp) for _, _, path, fp in found]

    def _remember(self, path: Path, fingerprint: list[int], status: str,
                  error: str | None = None) -> None:
        self.state[path.name] = {"fingerprint": fingerprint, "status": status,
                                 "at": int(self.clock() * 1000), "error": error}
        # Forget files that left the folder, so the state stays small.
        present = {p.name for p in self.folder.iterdir()}
        self.state = {k: v for k, v in self.state.items() if k in present}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.state_path)

    def _load_state(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("%s is unreadable: starting afresh", self.state_path)
            return {}
        return data if isinstance(data, dict) else {}
