"""Plate-reading accuracy on real photos, one image at a time, as the flow reads frames.

    python -m benchmarks.accuracy ../shared/data/openalpr-us-dev
    python -m benchmarks.accuracy ../shared/data/openalpr-eu --limit 20 --json eu.json

DIR holds NAME.jpg with NAME.txt beside it: one tab-separated line
`NAME.jpg x y width height PLATE` (the ../shared/data format). Each image goes through
recognizers.frame_reader.read_frame with the flow's settings (ALPR_* environment
variables apply), so the figures are what the flow would publish for a single frame.

Reported: exact % (best candidate == truth), loose % (O=0 and I=1 counted equal),
among % (truth is one of the candidates the flow keeps), ms per image (p50, p95; the
first image warms up and is not timed), calibration (precision and share of images at
or above each confidence threshold, and at the flow's alert threshold), and every
misread as truth -> read.

Labels are read with the errata of `recognizers/training/errata/` (labels corrected after
looking at their images; the report says how many); `--labels-as-given` ignores them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2

from benchmarks.pipeline import percentile
from kernel.settings import Settings
from recognizers import BACKENDS, load_recognizer
from recognizers.frame_reader import read_frame
from recognizers.training.data import SPLITS, read_folder, split_of

_LOOSE = str.maketrans("OI", "01")
THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class ImageResult:
    name: str
    truth: str
    read: str  # best candidate, "" when none
    confidence: float
    candidates: tuple[str, ...]
    ms: float
    truth_state: str = ""  # the label's issuing state, "" where it has none
    state: str = ""  # the best candidate's state read, "" if none
    state_confidence: float = 0.0
    label_corrected: bool = False  # the truth is an erratum's correction of the label

    @property
    def exact(self) -> bool:
        return self.read == self.truth

    @property
    def loose(self) -> bool:
        return self.read.translate(_LOOSE) == self.truth.translate(_LOOSE)

    @property
    def among(self) -> bool:
        return self.truth in self.candidates


def ground_truth(folder: Path) -> list[tuple[Path, str, str]]:
    """(image path, plate, state or "") for every NAME.txt with its image, by name; a
    label that does not parse is an error naming its file."""
    return [(p.path, p.plate, p.state) for p in read_folder(folder)]


def evaluate(
    folder: Path, settings: Settings, backend: str | None, limit: int | None,
    split: str | None = None, errata: bool = True, suffix: str | None = None,
) -> list[ImageResult]:
    recognizer = load_recognizer(settings, backend)
    items = read_folder(folder, errata)
    if split is not None:  # the plate reader's own split (recognizers/training/data.py)
        items = [item for item in items if split_of(item.plate) == split]
    if suffix is not None:
        items = [item for item in items if item.path.suffix.lower() == suffix.lower()]
    items = items[:limit]
    results = []
    for i, item in enumerate(items):
        path = item.path
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: not a readable image")
        if i == 0:
            read_frame(recognizer, image, settings)  # warm-up: ORT allocates on first run
        started = time.perf_counter()
        candidates = read_frame(recognizer, image, settings)
        ms = (time.perf_counter() - started) * 1000
        best = candidates[0] if candidates else None
        results.append(ImageResult(
            name=path.name, truth=item.plate, read=best.text if best else "",
            confidence=best.confidence if best else 0.0,
            candidates=tuple(c.text for c in candidates), ms=ms, truth_state=item.state,
            state=best.state if best else "",
            state_confidence=best.state_confidence if best else 0.0,
            label_corrected=item.corrected,
        ))
    return results


def calibration(results: Sequence[ImageResult], thresholds: Sequence[float]) -> list[dict]:
    """Per threshold: share of images whose best read is at or above it (coverage) and
    the share of those that are exactly right (precision) or right up to O/0 and I/1
    (loose precision: the EU set's own labels confuse O and 0)."""
    rows = []
    for t in thresholds:
        above = [r for r in results if r.read and r.confidence >= t]
        rows.append({
            "threshold": t,
            "coverage": len(above) / len(results),
            "precision": sum(r.exact for r in above) / len(above) if above else None,
            "loose_precision": sum(r.loose for r in above) / len(above) if above else None,
            "reads": len(above),
        })
    return rows


RELIABILITY_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)


def reliability(results: Sequence[ImageResult]) -> list[dict]:
    """The reliability curve: per confidence bin, how many best reads fell in it and how
    many of them were exactly right. A calibrated reader's share right sits in its bin."""
    rows = []
    for lo, hi in itertools.pairwise(RELIABILITY_BINS):
        inside = [r for r in results if r.read and lo <= r.confidence < hi]
        rows.append({"from": lo, "to": min(hi, 1.0), "reads": len(inside),
                     "right": sum(r.exact for r in inside) / len(inside) if inside else None})
    return rows


def state_figures(results: Sequence[ImageResult], sure: float) -> dict[str, Any] | None:
    """Of the images whose label carries a state: the share whose best read names it,
    names another, or names none; and the same for states read at least `sure`ly (what a
    published read carries)."""
    labelled = [r for r in results if r.truth_state]
    if not labelled:
        return None
    published = [r for r in labelled if r.state and r.state_confidence >= sure]
    return {
        "images": len(labelled),
        "right": 100 * sum(r.state == r.truth_state for r in labelled) / len(labelled),
        "wrong": 100 * sum(bool(r.state) and r.state != r.truth_state for r in labelled)
                 / len(labelled),
        "published_share": 100 * len(published) / len(labelled),
        "published_precision": (100 * sum(r.state == r.truth_state for r in published)
                                / len(published)) if published else None,
        "threshold": sure,
    }


def summarise(results: Sequence[ImageResult], settings: Settings) -> dict[str, Any]:
    n = len(results)
    times = [r.ms for r in results]
    thresholds = sorted(set(THRESHOLDS) | {settings.alert_min_confidence})
    return {
        "images": n,
        "exact": 100 * sum(r.exact for r in results) / n,
        "loose": 100 * sum(r.loose for r in results) / n,
        "among": 100 * sum(r.among for r in results) / n,
        "no_read": sum(not r.read for r in results),
        "ms_p50": statistics.median(times),
        "ms_p95": percentile(times, 95),
        "calibration": calibration(results, thresholds),
        "reliability": reliability(results),
        "state": state_figures(results, settings.state_min_confidence),
        "alert_threshold": settings.alert_min_confidence,
        "labels_corrected": sum(r.label_corrected for r in results),
        "misreads": [
            {"image": r.name, "truth": r.truth, "read": r.read,
             "confidence": round(r.confidence, 3), "among": r.among}
            for r in results if not r.exact
        ],
    }


def print_report(folder: Path, summary: dict[str, Any]) -> None:
    fixed = summary["labels_corrected"]
    print(f"{folder}: {summary['images']} images"
          + (f" ({fixed} labels corrected by errata)" if fixed else ""))
    print(f"{'exact %':>8} {'loose %':>8} {'among %':>8} {'no read':>8} {'ms p50':>8} "
          f"{'ms p95':>8}")
    print(f"{summary['exact']:8.1f} {summary['loose']:8.1f} {summary['among']:8.1f} "
          f"{summary['no_read']:8d} {summary['ms_p50']:8.0f} {summary['ms_p95']:8.0f}")
    print("\nconfidence threshold -> share of images read at or above it, precision "
          "(exact / loose):")
    for row in summary["calibration"]:
        precision = "/".join(
            "-" if row[k] is None else f"{100 * row[k]:.1f}%"
            for k in ("precision", "loose_precision")
        )
        mark = "  <- alert threshold" if row["threshold"] == summary["alert_threshold"] else ""
        print(f"  >= {row['threshold']:.2f}: {100 * row['coverage']:5.1f}% read, "
              f"precision {precision}{mark}")
    print("\nreliability (confidence bin -> best reads in it, share exactly right):")
    for row in summary["reliability"]:
        right = "-" if row["right"] is None else f"{100 * row['right']:.1f}%"
        print(f"  {row['from']:.2f}-{row['to']:.2f}: {row['reads']:4d} reads, {right} right")
    state = summary["state"]
    if state:
        precision = state["published_precision"]
        print(f"\nstate (of {state['images']} labelled): {state['right']:.1f}% right, "
              f"{state['wrong']:.1f}% wrong; published (>= {state['threshold']:.2f}) for "
              f"{state['published_share']:.1f}%, precision "
              f"{'-' if precision is None else f'{precision:.1f}%'}")
    if summary["misreads"]:
        print("\nmisreads (truth -> read, confidence, truth among candidates):")
        for m in summary["misreads"]:
            print(f"  {m['truth']:>10} -> {m['read'] or '(none)':<10} {m['confidence']:.2f} "
                  f"{'among' if m['among'] else ''}  {m['image']}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of NAME.jpg + NAME.txt")
    parser.add_argument("--limit", type=int, default=None, help="first N images per folder")
    parser.add_argument("--split", choices=SPLITS, default=None,
                        help="only the images of this split of the plate reader's training "
                             "(by plate; report `test`, which nothing was trained or tuned on)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--labels-as-given", action="store_true",
                        help="ignore the errata (recognizers/training/errata/)")
    parser.add_argument("--suffix", default=None,
                        help="only images whose file name ends so, e.g. .jpg: the real "
                             "photos of openalpr-br-crops (its .png images, all 240x80, "
                             "are rendered plates)")
    parser.add_argument("--backend", default=None, choices=BACKENDS,
                        help="default: ALPR_RECOGNIZER_BACKEND (ppocr-onnx)")
    args = parser.parse_args(argv)
    settings = Settings()
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, "
                   f"ort_threads={settings.ort_threads}",
        "settings": settings.model_dump(mode="json", exclude={"topics"}),
        "backend": args.backend or settings.recognizer_backend,
        "date": time.strftime("%Y-%m-%d"),
        "split": args.split or "all",
        "suffix": args.suffix or "any",
        "folders": {},
    }
    for folder in args.folders:
        results = evaluate(folder, settings, args.backend, args.limit, args.split,
                           errata=not args.labels_as_given, suffix=args.suffix)
        summary = summarise(results, settings)
        print_report(folder, summary)
        print()
        summary["results"] = [asdict(r) for r in results]
        report["folders"][str(folder)] = summary
    if len(args.folders) == 1:  # the documented top-level keys for one folder
        report.update({k: v for k, v in summary.items() if k != "results"})
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
