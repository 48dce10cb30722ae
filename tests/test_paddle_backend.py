"""The optional PaddleOCR backend: chosen by configuration, same interface.

Its real-model test runs only where the paddleocr package and PaddleOCR models are
present (ALPR_PADDLE_DET_MODEL_DIR / ALPR_PADDLE_REC_MODEL_DIR); elsewhere it skips and
says why. The configuration errors and the result mapping are tested everywhere.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from kernel.settings import Settings
from recognizers import load_recognizer
from recognizers.base import Recognizer
from recognizers.paddle import BackendUnavailableError, PaddleOCRRecognizer, regions_from_result

HAVE_PADDLEOCR = importlib.util.find_spec("paddleocr") is not None
DET_DIR = os.environ.get("ALPR_PADDLE_DET_MODEL_DIR", "")
REC_DIR = os.environ.get("ALPR_PADDLE_REC_MODEL_DIR", "")


def test_backend_is_chosen_by_configuration_and_needs_local_models() -> None:
    with pytest.raises(ValueError, match="ALPR_PADDLE_DET_MODEL_DIR"):
        load_recognizer(Settings(recognizer_backend="paddleocr"))
    with pytest.raises(ValueError, match="unknown recognizer backend"):
        load_recognizer(Settings(recognizer_backend="tesseract"))


def test_missing_model_folder_is_an_error_not_a_download(tmp_path: Path) -> None:
    settings = Settings(recognizer_backend="paddleocr", paddle_det_model_dir=tmp_path / "det",
                        paddle_rec_model_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="detection model folder"):
        load_recognizer(settings)


@pytest.mark.skipif(HAVE_PADDLEOCR, reason="paddleocr is installed here")
def test_without_the_package_the_error_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"alpr-hotlist\[paddle\]"):
        PaddleOCRRecognizer(tmp_path, tmp_path)


def test_paddle_results_map_to_text_reads() -> None:
    """A PaddleOCR 3 predict() result: one score per line, polygons in image pixels."""
    result = [{
        "rec_texts": ["ABC-1234", "", "COLORADO"],
        "rec_scores": [0.81, 0.5, 0.99],
        "rec_polys": [np.array([[100, 50], [300, 52], [300, 100], [100, 98]]),
                      np.array([[0, 0], [1, 0], [1, 1], [0, 1]]),
                      np.array([[-5, 10], [90, 10], [90, 30], [-5, 30]])],
    }]
    reads = regions_from_result(result, (120, 400, 3))
    assert [r.raw_text for r in reads] == ["ABC-1234", "COLORADO"]  # empty lines dropped
    assert reads[0].box == (100, 50, 200, 50)
    assert reads[1].box == (0, 10, 90, 20)  # clipped to the image
    assert len(reads[0].char_probs) == 8
    assert float(np.prod(reads[0].char_probs)) == pytest.approx(0.81)


@pytest.mark.skipif(not (HAVE_PADDLEOCR and DET_DIR and REC_DIR),
                    reason="needs the paddleocr package and local PaddleOCR models "
                           "(ALPR_PADDLE_DET_MODEL_DIR, ALPR_PADDLE_REC_MODEL_DIR); "
                           "none can be downloaded here")
def test_real_paddleocr_reads_a_plate() -> None:
    recognizer = load_recognizer(Settings(recognizer_backend="paddleocr",
                                          paddle_det_model_dir=Path(DET_DIR),
                                          paddle_rec_model_dir=Path(REC_DIR)))
    assert isinstance(recognizer, Recognizer)
    img = np.full((720, 1280, 3), 118, np.uint8)
    cv2.rectangle(img, (480, 330), (800, 450), (245, 245, 242), -1)
    cv2.putText(img, "KJH4821", (500, 415), cv2.FONT_HERSHEY_SIMPLEX, 1.8, (20, 20, 20), 5)
    candidates = recognizer.read(img)
    assert candidates and candidates[0].text == "KJH4821"
