"""`python -m recognizers.training.scorer`: learn which candidate is the plate, and how
sure its read is (recognizers/candidate_scorer.py), from real labelled photos.

    python -m recognizers.training.scorer --data ../shared/data \\
        --out recognizers/models/plate_scorer.json

Every labelled image the scorer may learn from is read by the shipped recogniser, as the
flow reads a frame; each candidate it finds is a row, labelled 1 when its text is exactly
the plate. Which images: never a test split (`recognizers/training/data.py`: by plate);
of the folders the plate reader was trained on (its JSON report names them) only the val
split, since on its own training plates the reader is surer than it will be on new ones;
of the others (scene photos the reader never saw), train and val. A logistic model with
L2 is fitted; the L2 weight is chosen by 5-fold cross-validation grouped by image. About
5 minutes on 2 cores. Writes the model and, beside it, a JSON report (images, rows, the
chosen L2, each fold's log loss).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from kernel.settings import Settings
from recognizers import load_recognizer
from recognizers.candidate_scorer import (
    FEATURES,
    CandidateScorer,
    candidate_features,
    default_scorer_path,
)
from recognizers.training.data import LabelledPlate, read_folder, split_of

DEFAULT_FOLDERS = ("openalpr-us-dev", "openalpr-eu", "openalpr-us-crops-train",
                   "openalpr-br-crops")
L2_CHOICES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
_FOLDS = 5


def learning_images(
    data: Path, folders: Sequence[str], reader_folders: Sequence[str]
) -> list[tuple[str, LabelledPlate]]:
    """(folder, image) pairs the scorer may learn from (see the module's docstring)."""
    out = []
    for folder in folders:
        allowed = ("val",) if folder in reader_folders else ("train", "val")
        out += [(folder, p) for p in read_folder(data / folder)
                if split_of(p.plate) in allowed]
    return out


def candidate_rows(
    images: Sequence[tuple[str, LabelledPlate]], settings: Settings
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Features, labels (exact read) and image index of every candidate found."""
    recognizer = load_recognizer(settings)
    x, y, group = [], [], []
    started = time.monotonic()
    for i, (_, plate) in enumerate(images):
        image = cv2.imread(str(plate.path))
        if image is None:
            raise ValueError(f"{plate.path}: not an image")
        candidates = recognizer.read(image)
        for rank, candidate in enumerate(candidates):
            x.append(candidate_features(candidate, candidates, rank))
            y.append(float(candidate.text == plate.plate))
            group.append(i)
        if (i + 1) % 100 == 0 or i + 1 == len(images):
            print(f"read {i + 1}/{len(images)} images, {len(x)} candidates, "
                  f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return np.array(x, np.float64), np.array(y, np.float64), np.array(group, np.int64)


def fit_logistic(x: NDArray[np.float64], y: NDArray[np.float64], l2: float) -> NDArray[np.float64]:
    """Weights then bias of an L2-penalised logistic regression (Newton's method;
    the bias is not penalised). `x` is already standardised."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    penalty = l2 * np.diag(np.r_[np.ones(d), 0.0])
    beta = np.zeros(d + 1)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-xb @ beta))
        grad = xb.T @ (p - y) + penalty @ beta
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + penalty + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, grad)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta


def _log_loss(beta: NDArray[np.float64], x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    p = 1.0 / (1.0 + np.exp(-(np.hstack([x, np.ones((len(x), 1))]) @ beta)))
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def choose_l2(
    x: NDArray[np.float64], y: NDArray[np.float64], group: NDArray[np.int64]
) -> tuple[float, dict[str, list[float]]]:
    """The L2 weight of least mean held-out log loss over folds of whole images."""
    fold_of_image = np.random.default_rng(0).permutation(group.max() + 1) % _FOLDS
    fold = fold_of_image[group]
    losses: dict[str, list[float]] = {}
    for l2 in L2_CHOICES:
        losses[str(l2)] = [
            _log_loss(fit_logistic(x[fold != k], y[fold != k], l2), x[fold == k], y[fold == k])
            for k in range(_FOLDS)
        ]
    best = min(L2_CHOICES, key=lambda l2: float(np.mean(losses[str(l2)])))
    return best, losses


def train_scorer(
    x: NDArray[np.float64], y: NDArray[np.float64], group: NDArray[np.int64]
) -> tuple[CandidateScorer, dict[str, object]]:
    """The fitted scorer and what chose it."""
    if len(set(y.tolist())) < 2:
        raise ValueError("the scorer needs both right and wrong candidates to learn from")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature: weight 0 either way
    z = (x - mean) / scale
    l2, losses = choose_l2(z, y, group)
    beta = fit_logistic(z, y, l2)
    scorer = CandidateScorer(tuple(mean.tolist()), tuple(scale.tolist()),
                             tuple(beta[:-1].tolist()), float(beta[-1]))
    return scorer, {"l2": l2, "cv_log_loss": losses}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recognizers.training.scorer",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True,
                    help="folder holding the labelled folders (../shared/data)")
    ap.add_argument("--out", type=Path, required=True, help="scorer JSON to write")
    ap.add_argument("--folders", default=",".join(DEFAULT_FOLDERS),
                    help="comma-separated labelled folders under --data")
    ap.add_argument("--reader-report", type=Path,
                    default=default_scorer_path().with_name("plate_rec.json"),
                    help="the plate reader's training report: the folders it trained on")
    args = ap.parse_args(argv)
    reader_folders = json.loads(args.reader_report.read_text())["config"]["folders"]
    folders = [f for f in args.folders.split(",") if f]
    images = learning_images(args.data, folders, reader_folders)
    x, y, group = candidate_rows(images, Settings())
    scorer, chosen = train_scorer(x, y, group)
    args.out.write_text(json.dumps(scorer.to_json(), indent=1) + "\n")
    report = {
        "date": date.today().isoformat(), "machine": platform.machine(),
        "folders": folders, "reader_trained_on": reader_folders,
        "images": {f: sum(1 for g, _ in images if g == f) for f in folders},
        "image_names": sorted(f"{g}/{p.name}" for g, p in images),
        "candidates": len(y), "right": int(y.sum()), **chosen,
        "weights": dict(zip(FEATURES, scorer.weights, strict=True)),
    }
    report_path = args.out.with_name(args.out.stem + "_report.json")
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out} and {report_path}: {len(images)} images, {len(y)} candidates, "
          f"L2 {chosen['l2']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
