"""Small print after a plate number is dropped; everything else is kept.

The pure rule is fed character heights; the recogniser is fed text drawn here: a serial
in large print followed by two small digits (as New Jersey prints them), and the same
characters all in large print.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recognizers.ppocr_onnx import TEXT_REC_MODEL_NAME, PPOCRRecognizer, default_model_path
from recognizers.small_print import char_heights, small_tail


def test_a_short_trailing_pair_is_small_print() -> None:
    assert small_tail([39, 38, 38, 38, 38, 37, 19, 18]) == 2  # 10DTM + small 59
    assert small_tail([30, 31, 30, 29, 14, 13, 15]) == 3


@pytest.mark.parametrize(
    "heights",
    [
        [38, 38, 38, 38, 38, 37, 38],  # all one height
        [38, 38, 38, 38, 38, 37, 17],  # only the last is short: kept
        [38, 38, 38, 19, 18],  # would leave 3 characters
        [8, 25, 28, 24, 24, 16, 14],  # the rest is uneven: the threshold failed
        [],
    ],
)
def test_nothing_else_is_small_print(heights: list[int]) -> None:
    assert small_tail(heights) == 0


def test_char_heights_measure_ink_rows_per_span() -> None:
    """Fed: a white strip with a 30 px tall bar in columns 0-15 and a 12 px one in
    columns 16-31, spans of 2 steps of 8 px each. Out: 30 and 12."""
    strip = np.full((48, 32), 255, np.uint8)
    strip[9:39, 3:12] = 0
    strip[20:32, 21:28] = 0
    assert char_heights(strip, [(0, 1), (2, 3)], 8.0) == [30, 12]


@pytest.fixture(scope="module")
def recognizer() -> PPOCRRecognizer:
    # The general text recogniser reads both drawn small digits, which is the case the
    # mechanism is for; the plate reader reads them as one at most (a single short last
    # character is kept: test_nothing_else_is_small_print).
    return PPOCRRecognizer(rec_model=default_model_path(TEXT_REC_MODEL_NAME))


def _drawn(big: str, small: str) -> np.ndarray:
    """`big` at ~40 px tall, then `small` at about half that, top-aligned, on white."""
    image = np.full((64, 360, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, big, (8, 52), font, 1.5, (0, 0, 0), 4, cv2.LINE_AA)
    (w, _), _ = cv2.getTextSize(big, font, 1.5, 4)
    cv2.putText(image, small, (8 + w + 6, 32), font, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    end = 8 + w + 6 + cv2.getTextSize(small, font, 0.7, 2)[0][0] + 8
    return image[:, :end]


def test_the_recogniser_drops_small_digits_after_the_serial(recognizer: PPOCRRecognizer) -> None:
    (text, probs, alternatives), = recognizer.recognize([_drawn("10DTM", "59")])
    assert text == "10DTM"
    assert len(probs) == len(alternatives) == len(text)


def test_the_recogniser_keeps_full_size_characters(recognizer: PPOCRRecognizer) -> None:
    image = np.full((64, 360, 3), 255, np.uint8)
    cv2.putText(image, "10DTM59", (8, 52), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 4,
                cv2.LINE_AA)
    (text, _, _), = recognizer.recognize([image[:, :250]])
    assert text == "10DTM59"
