"""The plate reader's training data and model surgery (recognizers/training/).

Fed: labelled folders written here (good, malformed, missing images), plate texts, and
the shipped PP-OCRv6 recogniser. Must hold: every image of a plate lands on one side of
the split, the same on every run; a bad label is an error naming its file, never a
silently skipped image; cutting the classifier to plate characters changes no plate
read of the shipped model.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from kernel.settings import Settings
from recognizers import load_recognizer
from recognizers.ppocr_onnx import (
    DET_MODEL_NAME,
    TEXT_REC_MODEL_NAME,
    PPOCRRecognizer,
    default_model_path,
)
from recognizers.training.data import ERRATA_DIR, by_split, read_errata, read_folder, split_of
from recognizers.training.model import PLATE_CHARS, charset_of, plate_head
from sim.plate_render import render_plate


def _label(folder: Path, name: str, line: str, image: bool = True) -> None:
    if image:
        (folder / f"{name}.png").write_bytes(b"\x89PNG")
    (folder / f"{name}.txt").write_text(line)


def test_the_split_is_by_plate_stable_and_near_its_shares() -> None:
    rng = np.random.default_rng(1)
    plates = ["".join(rng.choice(list(PLATE_CHARS), 7)) for _ in range(3000)]
    shares = Counter(split_of(p) for p in plates)
    assert abs(shares["train"] / 3000 - 0.70) < 0.03
    assert abs(shares["val"] / 3000 - 0.15) < 0.03
    assert [split_of(p) for p in plates[:50]] == [split_of(p) for p in plates[:50]]
    with pytest.raises(ValueError, match="three percentages"):
        split_of("ABC123", (80, 30, 0))


def test_every_image_of_a_plate_is_on_one_side(tmp_path: Path) -> None:
    for i in range(40):
        _label(tmp_path, f"a{i}", f"a{i}.png\t0\t0\t10\t5\tPLATE{i % 8}\tCO")
    sides = by_split(read_folder(tmp_path))
    seen: dict[str, set[str]] = {}
    for side, plates in sides.items():
        for p in plates:
            seen.setdefault(p.plate, set()).add(side)
    assert len(seen) == 8 and all(len(s) == 1 for s in seen.values())
    assert sum(len(v) for v in sides.values()) == 40
    assert {p.state for v in sides.values() for p in v} == {"CO"}


@pytest.mark.parametrize(("line", "image", "error"), [
    ("x.png\t0\t0\t10", True, "at least 6"),
    ("x.png\t0\t0\tten\t5\tABC123", True, "four whole numbers"),
    ("x.png\t0\t0\t10\t5\tAB-123", True, "letters and digits"),
    ("x.png\t0\t0\t10\t5\tABC123", False, "missing"),
])
def test_a_bad_label_is_an_error_naming_its_file(
    tmp_path: Path, line: str, image: bool, error: str
) -> None:
    _label(tmp_path, "ok", "ok.png\t0\t0\t10\t5\tGOOD1")
    _label(tmp_path, "x", line, image)
    with pytest.raises((ValueError, FileNotFoundError), match=error) as info:
        read_folder(tmp_path)
    assert "x." in str(info.value)


def test_cutting_the_classifier_to_plate_characters_changes_no_plate_read(
    tmp_path: Path,
) -> None:
    source = default_model_path(TEXT_REC_MODEL_NAME)
    pruned = plate_head(onnx.load(str(source)))
    assert charset_of(pruned) == ["<blank>", *PLATE_CHARS, " "]
    path = tmp_path / "plate_rec.onnx"
    onnx.save(pruned, str(path))
    assert path.stat().st_size < 0.7 * source.stat().st_size

    rng = np.random.default_rng(5)
    texts = ["ABC1234", "7KQX214", "XYZ98", "M4NT3", "JH8842"]
    crops = [np.asarray(render_plate(t, rng, style=0))[28:-28, 8:-8] for t in texts]
    full = PPOCRRecognizer(rec_model=source)
    plate_only = PPOCRRecognizer(rec_model=path)
    before = [r.text for r in full.recognize(crops)]
    after = [r.text for r in plate_only.recognize(crops)]
    assert any(t.replace(" ", "") in texts for t in before), before  # the crops are legible
    for b, a in zip(before, after, strict=True):
        if all(c in PLATE_CHARS for c in b):
            assert a == b


def test_the_reader_loads_from_an_explicit_path_and_a_missing_one_is_named(
    tmp_path: Path,
) -> None:
    # Fed: ALPR_REC_MODEL pointing at a plate-only model, then at a file that is not there.
    # Must hold: the recogniser reads with the model given; a missing one is an error
    # naming the path and the setting, not an onnxruntime traceback.
    path = tmp_path / "plate_rec.onnx"
    onnx.save(plate_head(onnx.load(str(default_model_path(TEXT_REC_MODEL_NAME)))), str(path))
    recognizer = load_recognizer(Settings(rec_model=path))
    assert recognizer._charset == ["<blank>", *PLATE_CHARS, " "]
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*ALPR_REC_MODEL"):
        load_recognizer(Settings(rec_model=missing))


def test_a_model_folder_from_before_the_plate_reader_still_loads(tmp_path: Path) -> None:
    # Fed: ALPR_MODEL_DIR holding the detector and only the general recogniser (a site's
    # folder set up before the plate reader shipped). Must hold: it loads, with the
    # general recogniser's full character set.
    for name in (DET_MODEL_NAME, TEXT_REC_MODEL_NAME):
        (tmp_path / name).symlink_to(default_model_path(name))
    recognizer = load_recognizer(Settings(model_dir=tmp_path))
    assert len(recognizer._charset) > 10_000
    assert len(load_recognizer(Settings())._charset) == len(PLATE_CHARS) + 2


def test_a_scene_photo_trains_on_its_labelled_plate_box_not_the_whole_photo(
    tmp_path: Path,
) -> None:
    """Fed: a 200x100 'scene' whose label puts the plate at (50, 20, 80, 30). Must hold:
    the reader's `whole` sample is that box, as a crop's is its whole image."""
    import cv2

    from recognizers.training.samples import cut, load_samples

    scene = np.zeros((100, 200, 3), np.uint8)
    scene[20:50, 50:130] = 255
    cv2.imwrite(str(tmp_path / "scene.png"), scene)
    _label(tmp_path, "scene", "scene.png\t50\t20\t80\t30\tABC123", image=False)
    plates = read_folder(tmp_path)
    (sample,) = load_samples(plates, "scenes", lines={})
    assert sample.kind == "whole" and sample.label == "ABC123"
    assert cut(sample).shape[:2] == (30, 80)
    assert cut(sample).min() == 255  # only the plate, none of the dark scene


def test_rendered_plates_train_only_and_frame_their_serial() -> None:
    """Fed: 20 rendered plates (seed 3), twice. Must hold: each gives a whole-plate and a
    serial-line sample, both in the train split (val and test stay real), labelled with
    the plate's letters and digits only; the line lies inside the whole plate, and the
    whole plate inside its image with room around it for a loose box; the same seed
    draws the same samples."""
    from recognizers.training.synthetic import SOURCE, synthetic_samples

    samples = synthetic_samples(20, seed=3)
    assert len(samples) == 40
    assert {s.split for s in samples} == {"train"} and {s.source for s in samples} == {SOURCE}
    for whole, line in zip(samples[::2], samples[1::2], strict=True):
        assert (whole.kind, line.kind) == ("whole", "line") and whole.label == line.label
        assert whole.label.isalnum() and whole.label == whole.label.upper()
        (x0, y0), (x1, y1) = whole.poly.min(axis=0), whole.poly.max(axis=0)
        h, w = whole.image.shape[:2]
        assert min(x0, y0) > 0 and x1 < w and y1 < h
        (lx0, ly0), (lx1, ly1) = line.poly.min(axis=0), line.poly.max(axis=0)
        assert x0 < lx0 < lx1 < x1 and y0 < ly0 < ly1 < y1
    again = synthetic_samples(20, seed=3)
    assert [s.label for s in again] == [s.label for s in samples]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(again, samples, strict=True))


def test_an_erratum_corrects_its_label_and_moves_the_plate_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fed: a folder whose label KXD7I21 an erratum corrects to KXD7121, a second image
    of KXD7121 labelled right, and an erratum for a label the folder no longer gives.
    Must hold: the corrected plate is read, both images of the plate share a split, the
    stale erratum changes nothing, and `errata=False` gives the labels as written."""
    data = tmp_path / "plates"
    data.mkdir()
    _label(data, "a", "a.png\t0\t0\t10\t5\tKXD7I21")
    _label(data, "b", "b.png\t0\t0\t10\t5\tKXD7121")
    _label(data, "c", "c.png\t0\t0\t10\t5\tHLF2160")
    errata = tmp_path / "errata"
    errata.mkdir()
    (errata / "plates.tsv").write_text(
        "image\tgiven\tcorrected\twhy\n"
        "a.png\tKXD7I21\tKXD7121\told plate, four digits\n"
        "c.png\tHLF2D60\tHLF2161\tfixed upstream since\n")
    monkeypatch.setattr("recognizers.training.data.ERRATA_DIR", errata)
    plates = {p.name: p.plate for p in read_folder(data)}
    assert plates == {"a.png": "KXD7121", "b.png": "KXD7121", "c.png": "HLF2160"}
    assert len({split_of(p) for p in plates.values() if p.startswith("KXD")}) == 1
    assert [p.plate for p in read_folder(data, errata=False)] == ["KXD7I21", "KXD7121",
                                                                   "HLF2160"]


@pytest.mark.parametrize(("text", "error"), [
    ("image\tlabel\tfix\n", "first line"),
    ("image\tgiven\tcorrected\twhy\na.png\tKXD7I21\tKXD7121\n", ":2: expected 4"),
    ("image\tgiven\tcorrected\twhy\na.png\tKXD7I21\tKXD-7121\tx\n", ":2: plates are"),
    ("image\tgiven\tcorrected\twhy\na.png\tA1\tA2\tx\na.png\tA1\tA3\ty\n", ":3: a.png is"),
])
def test_a_malformed_erratum_is_an_error_naming_its_line(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "plates.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        read_errata(path)


def test_the_shipped_errata_parse_and_each_corrects_a_label_to_another() -> None:
    for path in sorted(ERRATA_DIR.glob("*.tsv")):
        for fix in read_errata(path).values():
            assert fix.given != fix.corrected, fix
