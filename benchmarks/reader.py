"""The recogniser alone: ms per plate crop, one crop per call, one thread.

    python -m benchmarks.reader ../shared/data/openalpr-us-crops-train --json reader.json

Each labelled image (a plate crop) is read whole by the plate reader (`plate_rec.onnx`)
and by the general PP-OCRv6 recogniser it was trained from, as the flow calls it
(`PPOCRRecognizer.recognize`, CTC decoding and alternatives included). The first crop
warms up and is not timed. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2

from benchmarks.accuracy import ground_truth
from benchmarks.pipeline import percentile
from recognizers.ppocr_onnx import (
    REC_MODEL_NAME,
    TEXT_REC_MODEL_NAME,
    PPOCRRecognizer,
    default_model_path,
)


def time_reader(model: Path, crops: list) -> dict[str, float]:
    reader = PPOCRRecognizer(rec_model=model, threads=1)
    reader.recognize(crops[:1])
    times = []
    for crop in crops:
        started = time.perf_counter()
        reader.recognize([crop])
        times.append((time.perf_counter() - started) * 1000)
    return {"crops": len(crops), "ms_mean": statistics.fmean(times),
            "ms_p50": statistics.median(times), "ms_p95": percentile(times, 95)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a folder of labelled plate crops")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    crops = [cv2.imread(str(path), cv2.IMREAD_COLOR)
             for path, _, _ in ground_truth(args.folder)[: args.limit]]
    report = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "date": time.strftime("%Y-%m-%d"), "readers": {}}
    print(f"{'reader':<28} {'crops':>6} {'ms mean':>8} {'ms p50':>8} {'ms p95':>8}")
    for name in (REC_MODEL_NAME, TEXT_REC_MODEL_NAME):
        row = time_reader(default_model_path(name), crops)
        report["readers"][name] = row
        print(f"{name:<28} {row['crops']:>6} {row['ms_mean']:>8.2f} {row['ms_p50']:>8.2f} "
              f"{row['ms_p95']:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
