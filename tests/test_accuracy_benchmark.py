"""benchmarks.accuracy against a labelled folder with an erratum.

Fed: two rendered plate crops labelled in the ../shared/data format, one of them with a
wrong label that an erratum corrects. Must hold: the corrected label is what the read is
judged against, the report counts the correction, and `--labels-as-given` judges against
the label as written; `--suffix` keeps only the images whose file name ends so."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import accuracy
from sim.plate_render import render_plate


def _crops(tmp_path: Path, crops: list[tuple[str, str, str]]) -> Path:
    """A folder of rendered crops in the ../shared/data format: (image name, plate drawn,
    label written), the i-th drawn with seed i."""
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, (name, plate, label) in enumerate(crops):
        image = np.asarray(render_plate(plate, np.random.default_rng(i), width=240))[..., :3]
        cv2.imwrite(str(folder / name), np.ascontiguousarray(image))
        h, w = image.shape[:2]
        (folder / name).with_suffix(".txt").write_text(f"{name}\t0\t0\t{w}\t{h}\t{label}\n")
    return folder


def test_reads_are_judged_against_the_corrected_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _crops(tmp_path, [("p0.png", "KJX4821", "KJX4821"),
                               ("p1.png", "HLF2160", "HLF2D60")])
    errata = tmp_path / "errata"
    errata.mkdir()
    (errata / "crops.tsv").write_text("image\tgiven\tcorrected\twhy\n"
                                      "p1.png\tHLF2D60\tHLF2160\tfour digits\n")
    monkeypatch.setattr("recognizers.training.data.ERRATA_DIR", errata)

    def run(*extra: str) -> dict:
        out = tmp_path / "report.json"
        accuracy.main([str(folder), "--json", str(out), *extra])
        return json.loads(out.read_text())

    corrected, given = run(), run("--labels-as-given")
    assert corrected["exact"] == 100 and corrected["labels_corrected"] == 1
    assert given["exact"] == 50 and given["labels_corrected"] == 0
    assert [m["truth"] for m in given["misreads"]] == ["HLF2D60"]


def test_suffix_keeps_only_the_images_of_that_kind(tmp_path: Path) -> None:
    """Fed: a folder of one .png and one .jpg crop. Must hold: `--suffix .jpg` judges the
    .jpg alone (the real photos of a folder that mixes in rendered .png plates)."""
    folder = _crops(tmp_path, [("p0.png", "KJX4821", "KJX4821"),
                               ("p1.jpg", "HLF2160", "HLF2160")])
    out = tmp_path / "report.json"
    accuracy.main([str(folder), "--suffix", ".jpg", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["images"] == 1 and report["suffix"] == ".jpg"
    assert [r["truth"] for r in report["folders"][str(folder)]["results"]] == ["HLF2160"]
