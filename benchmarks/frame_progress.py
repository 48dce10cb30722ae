"""How far a flow cluster has got through its input, read from its processes' /metrics.

The pipeline benchmark's drain throughput: the span from the first frame any process
takes to the moment every frame is done (recognised, skipped as unchanged, or rejected),
without the pass-closing delay that the published reads carry.
"""

from __future__ import annotations

import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

# A frame is done once one of these has counted it (flows/pipeline.py: process_message):
# read, skipped, or turned into a dead letter (a frame the decoder rejected is counted
# there and as a decode failure: only the dead letter is counted here).
_DONE = {
    "alpr_recognition_seconds": "alpr_recognition_seconds_count",
    "alpr_frames_skipped": "alpr_frames_skipped_total",
    "alpr_dead_letters": "alpr_dead_letters_total",
}
_TAKEN = ("alpr_frames_in", "alpr_frames_in_total")


def frame_counts(metrics_text: str) -> tuple[float, float]:
    """(frames taken, frames done) in one process's /metrics text."""
    taken = done = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if (family.name, sample.name) == _TAKEN:
                taken += sample.value
            elif _DONE.get(family.name) == sample.name:
                done += sample.value
    return taken, done


class FrameProgress:
    """Polls /metrics of processes on ports base .. base + processes - 1 in a thread and
    notes, for each process, when it took its first frame and when its count of frames
    done last grew."""

    def __init__(self, base_port: int, processes: int, interval_s: float = 0.1) -> None:
        self.urls = [f"http://127.0.0.1:{base_port + i}/metrics" for i in range(processes)]
        self.interval_s = interval_s
        self.first_taken: list[float | None] = [None] * processes
        self.last_done: list[float | None] = [None] * processes
        self.done = [0.0] * processes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def frames_per_s(self, frames: int) -> float | None:
        """`frames` over the drain span (first frame taken by any process to last frame
        done by any), or None if no frame was seen done."""
        starts = [t for t in self.first_taken if t is not None]
        ends = [t for t in self.last_done if t is not None]
        if not starts or not ends or max(ends) <= min(starts):
            return None
        return round(frames / (max(ends) - min(starts)), 2)

    def busy_s(self) -> list[float | None]:
        """Each process's span from its first frame taken to its last done, in seconds:
        unequal spans mean the partitions gave the processes unequal work."""
        return [
            round(end - start, 1) if start is not None and end is not None else None
            for start, end in zip(self.first_taken, self.last_done, strict=True)
        ]

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            for i, url in enumerate(self.urls):
                try:
                    with urllib.request.urlopen(url, timeout=1) as reply:
                        taken, done = frame_counts(reply.read().decode())
                except OSError:  # not serving yet (models loading) or already stopped
                    continue
                now = time.monotonic()
                if taken > 0 and self.first_taken[i] is None:
                    self.first_taken[i] = now
                if done > self.done[i]:
                    self.done[i], self.last_done[i] = done, now
