"""`python -m recognizers.training`: retrain the plate reader and write its model card.

    python -m recognizers.training --data ../shared/data --out recognizers/models/plate_rec.onnx

About 35 minutes on 2 CPU cores for the default 1,000 steps. Writes the ONNX model, a JSON
report beside it (splits, every evaluation, test figures) and MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recognizers.training.card import write_card
from recognizers.training.train import TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recognizers.training",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True,
                    help="folder holding the labelled crop folders (../shared/data)")
    ap.add_argument("--out", type=Path, required=True, help="ONNX model to write")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--stop-after", type=int, default=None,
                    help="end after this step of the --steps schedule (a time budget)")
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--seed", type=int, default=TrainConfig.seed)
    ap.add_argument("--threads", type=int, default=TrainConfig.threads)
    ap.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    ap.add_argument("--synthetic", type=int, default=TrainConfig.synthetic,
                    help="rendered plates to train on beside the real ones (0: none)")
    ap.add_argument("--work", type=Path, default=TrainConfig.work,
                    help="cache of the detector's serial lines (re-runs skip detection)")
    args = ap.parse_args(argv)
    cfg = TrainConfig(data=args.data, out=args.out, steps=args.steps,
                      stop_after=args.stop_after, batch=args.batch,
                      lr=args.lr, seed=args.seed, threads=args.threads,
                      eval_every=args.eval_every, work=args.work,
                      synthetic=args.synthetic)
    report = train(cfg)
    report_path = args.out.with_suffix(".json")
    report_path.write_text(json.dumps(report, indent=1))
    card = write_card(report, args.out.parent / "MODEL_CARD.md")
    print(f"wrote {args.out}, {report_path}, {card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
