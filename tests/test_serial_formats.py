"""A read that fits no US serial layout is read in one, when the recogniser's own second
choice for one character makes it fit and is likely enough; vanity reads the model is
sure of, and reads without alternatives, stay as read."""

import math

import numpy as np
import pytest

from kernel.settings import Settings
from recognizers.base import PlateCandidate
from recognizers.frame_reader import read_frame
from recognizers.plate_text import TextRead, fuse_looks
from recognizers.serial_formats import (
    US_SERIAL_FORMATS,
    VANITY_ODDS,
    fit_serial_format,
    fits_a_format,
)


def _candidate(text: str, probs: list[float], alternatives: dict[int, list[tuple[str, float]]]):
    """A candidate whose character i has alternatives[i] after itself (the read first)."""
    alts = tuple(
        ((c, p), *alternatives.get(i, [])) for i, (c, p) in enumerate(zip(text, probs, strict=True))
    )
    return PlateCandidate(text, math.prod(probs), tuple(probs), (0, 0, 90, 30), text, alts)


def test_layouts_are_distinct_and_mix_letters_and_digits() -> None:
    assert len(set(US_SERIAL_FORMATS)) == len(US_SERIAL_FORMATS)
    assert all("L" in f and "D" in f and set(f) <= {"L", "D"} for f in US_SERIAL_FORMATS)
    assert fits_a_format("CJ1P5G")  # Missouri AB1C2D
    assert fits_a_format("4FCW533")  # California 1ABC234
    assert not fits_a_format("CJIP5G")
    assert not fits_a_format("123456")  # all digits: not a layout here


def test_a_second_choice_that_fits_the_layout_is_taken() -> None:
    """Fed: Missouri's CJ1-P5G read "CJIP5G", I at 0.89 with 1 at 0.51 among the
    alternatives. Out: CJ1P5G, the 1 at its share against the vanity odds."""
    read = _candidate("CJIP5G", [1.0, 1.0, 0.89, 1.0, 1.0, 0.99], {2: [("L", 0.45), ("1", 0.51)]})
    out = fit_serial_format(read)
    assert out.text == "CJ1P5G"
    assert out.char_confidences[2] == pytest.approx(0.51 / (0.51 + VANITY_ODDS * 0.89))
    assert out.char_confidences[:2] + out.char_confidences[3:] == (1.0, 1.0, 1.0, 1.0, 0.99)
    assert out.confidence == pytest.approx(math.prod(out.char_confidences))
    assert out.box == read.box and out.raw_text == read.raw_text


def test_a_letter_can_become_a_digit_of_another_class() -> None:
    """Fed: "ABCE123" (no layout), E at 0.6 with 7 at 0.3. Out: ABC7123."""
    out = fit_serial_format(
        _candidate("ABCE123", [1.0, 1.0, 1.0, 0.6, 1.0, 1.0, 1.0], {3: [("7", 0.3)]})
    )
    assert out.text == "ABC7123"
    assert out.char_confidences[3] == pytest.approx(0.3 / (0.3 + VANITY_ODDS * 0.6))
    assert out.confidence == pytest.approx(math.prod(out.char_confidences))


@pytest.mark.parametrize(
    ("text", "probs", "alternatives", "why"),
    [
        # The model all but ruled out the digit: a vanity plate stays as read.
        ("GOSKIS", [1.0] * 6, {2: [("5", 0.05)], 4: [("1", 0.05)]}, "alternative too unlikely"),
        ("CJIP5G", [1.0, 1.0, 0.9, 1.0, 1.0, 1.0], {2: [("1", 0.09)]}, "alternative too unlikely"),
        # Two characters would have to change: another text, not a misread.
        (
            "CJIPSG",
            [1.0, 1.0, 0.5, 1.0, 0.5, 1.0],
            {2: [("1", 0.5)], 4: [("5", 0.5)]},
            "two changes",
        ),
        # The layout needs a digit the model never offered.
        ("CJIP5G", [1.0, 1.0, 0.5, 1.0, 1.0, 1.0], {2: [("L", 0.5)]}, "no digit offered"),
        # Already a layout: nothing to fit, however unsure.
        ("ABC1234", [0.5] * 7, {0: [("4", 0.49)]}, "fits already"),
        # No layout of this length.
        ("ABCDEFGH", [0.5] * 8, {7: [("1", 0.5)]}, "no layout"),
    ],
)
def test_reads_that_stay_as_read(text, probs, alternatives, why) -> None:
    read = _candidate(text, probs, alternatives)
    assert fit_serial_format(read) == read, why


def test_without_alternatives_nothing_changes() -> None:
    """The PaddleOCR backend gives no alternatives: its reads pass through."""
    read = PlateCandidate("CJIP5G", 0.9, (1.0, 1.0, 0.9, 1.0, 1.0, 1.0), (0, 0, 9, 3), "CJIP5G")
    assert fit_serial_format(read) == read


def test_the_likeliest_layout_wins() -> None:
    """Fed: "1ABCD23" fits DLLDDDD (MD) with C->0 at 0.2, and DLLLDDD (CA) with D->0 at
    0.4. Out: the surer fit, California's."""
    read = _candidate(
        "1ABCD23", [1.0, 1.0, 1.0, 0.9, 0.9, 1.0, 1.0], {3: [("0", 0.2)], 4: [("0", 0.4)]}
    )
    assert fit_serial_format(read).text == "1ABC023"


class _OneRead:
    def __init__(self, candidate: PlateCandidate) -> None:
        self.candidate = candidate

    def read(self, image: object, regions: object = None) -> list[PlateCandidate]:
        return [self.candidate]


def test_read_frame_fits_us_serials_only_when_us_rules_are_on() -> None:
    """Fed: AG0-R6T read "AGORGT" (G 0.90, 6 0.39). With the US serial rules: O is a
    zero and the G a 6 (Missouri AB1C2D), at the 6/G class's probability (0.90 + 0.39,
    capped at 1). EU sites turn the rules off: as read, the G also at its class's."""
    read = _candidate("AGORGT", [1.0, 1.0, 1.0, 1.0, 0.9, 1.0], {4: [("6", 0.39)]})
    image = np.zeros((8, 8, 3), np.uint8)
    (out,) = read_frame(_OneRead(read), image, Settings(standard_issue_serials=True))
    assert out.text == "AG0R6T"
    assert out.confidence == pytest.approx(1.0)
    (kept,) = read_frame(_OneRead(read), image, Settings(standard_issue_serials=False))
    assert kept.text == "AGORGT"
    assert kept.confidence == pytest.approx(1.0)


def test_fused_looks_keep_both_looks_alternatives() -> None:
    """Fed: two looks at CJ1P5G: the frame-wide one reads the 1 as I (1 second), the
    zoomed one as L (I second). Out: the fused read offers each character at its higher
    probability of the two looks, likeliest first, one entry per kept character."""
    first = TextRead(
        "CJI-P5G",
        (1.0, 1.0, 0.6, 0.9, 1.0, 1.0, 1.0),
        (0, 0, 9, 3),
        (
            (("C", 1.0),),
            (("J", 1.0),),
            (("I", 0.6), ("1", 0.3)),
            (),
            (("P", 1.0),),
            (("5", 1.0),),
            (("G", 1.0),),
        ),
    )
    second = TextRead(
        "CJLP5G",
        (1.0, 1.0, 0.5, 1.0, 1.0, 1.0),
        (0, 0, 9, 3),
        (
            (("C", 1.0),),
            (("J", 1.0),),
            (("L", 0.5), ("I", 0.4), ("1", 0.35)),
            (("P", 1.0),),
            (("5", 1.0),),
            (("G", 1.0),),
        ),
    )
    fused = fuse_looks(first, second, (0, 0, 9, 3))
    assert fused is not None
    assert fused.raw_text == "CJIP5G"
    assert len(fused.alternatives) == 6
    assert fused.alternatives[2] == (("I", 0.6), ("L", 0.5), ("1", 0.35))
