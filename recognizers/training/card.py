"""The model card of a trained plate reader, from its training report."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _table(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> str:
    rows = ["| set / region | images | shipped PP-OCRv6 | trained |", "|---|---|---|---|"]
    for group, fig in after.items():
        if group.endswith("/other"):  # runs before 2026-12-07 also measured other text
            continue
        was = before.get(group, {}).get("exact")
        rows.append(f"| {group} | {fig['images']} | {was}% | {fig['exact']}% |")
    return "\n".join(rows)


def write_card(report: dict[str, Any], path: Path) -> Path:
    cfg = report["config"]
    stop = f" --stop-after {cfg['stop_after']}" if cfg.get("stop_after") else ""
    rendered = cfg.get("synthetic", 0)
    stop += f" --synthetic {rendered}" if rendered else ""
    synthetic_line = (
        f"Train includes {2 * rendered} samples of {rendered} rendered plates\n"
        "(`recognizers/training/synthetic.py`; each a whole plate and its serial line, train\n"
        "only): layouts, styles and a digit 0 the real US labels rarely show.\n"
        if rendered else "")
    fixed = {f: n for f, n in report.get("errata", {}).items() if n}
    errata_line = (
        "Labels corrected after looking at their images (`recognizers/training/errata/`,\n"
        f"applied to every split): {fixed}.\n" if fixed else "")
    text = f"""# Plate reader: model card

`{Path(cfg['out']).name}`: PP-OCRv6 small recognition ({report['base_model']}, from the
`rapidocr` wheel) with its classifier cut to A-Z, 0-9 (`recognizers/training/model.py`),
fine-tuned on real plates on CPU. Trained {report['date']} on {report['machine']},
{report['minutes']} minutes, by:

    python -m recognizers.training --data ../shared/data --out {cfg['out']} \\
        --steps {cfg['steps']}{stop} --batch {cfg['batch']} --lr {cfg['lr']} --seed {cfg['seed']}
{report.get('provenance', '')}
## Data
Folders of `../shared/data` (real photos from the `openalpr/benchmarks` and
`openalpr/train-detector` repositories, AGPL-3.0): {', '.join(cfg['folders'])}.
Each is split by plate text (never one plate on two sides; `recognizers/training/data.py`):
70% train, 15% val (chooses the checkpoint), 15% test (reported here, used for nothing
else). Samples (the plate's labelled box: a crop's whole image, the plate in a scene
photo; and the detector's serial line where it found one):
{report['samples']}. The names of every split are in the JSON report beside the model.
{errata_line}{synthetic_line}
Each plate is read two ways, as at run time: `whole` (the plate) and `line` (the text
line the shipped detector finds around the serial). Augmentation: box edges moved as a
detector's would be, slight perspective, distance (down- and up-scaling), blur, light,
IR grey, JPEG (`recognizers/training/augment.py`).

## Test split (exact plate, greedy CTC, the reader alone)
Chosen checkpoint: step {report['chosen_step']} of {cfg['steps']} (best on val).

{_table(report['test_before'], report['test_chosen'])}

Val at the chosen step: {report['val_chosen']}.

## Limits
US plates are few (about 250 crops and 54 scene plates to train on) and most states
have only a handful;
designs absent from them (new specialty plates, stacked characters) are read as well as
the base model reads them, or worse. Letter O and digit 0 are told apart only where the
training labels did (a few states issue both). Confidence is the model's softmax; see
`benchmarks.accuracy` for how it maps to precision in the whole reading path.
"""
    path.write_text(text)
    return path
