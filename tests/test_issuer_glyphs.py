"""Standard-issue serials: O is always a zero, I and Q only inside a digit block, a leading
L of four letters and three digits is California's 4, and a graphic read in front of a
seven-character serial is no character."""

import numpy as np
import pytest

from kernel.settings import Settings
from recognizers.base import PlateCandidate
from recognizers.frame_reader import read_frame
from recognizers.issuer_glyphs import leading_graphic, standard_issue


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        ("UH1FOF", "UH1F0F"),  # O is never a letter on a US standard plate
        ("OFWU250", "0FWU250"),
        ("6XIU641", "6XIU641"),  # California letter block: I between letters stays
        ("5TQY867", "5TQY867"),
        ("4PCI264", "4PCI264"),  # a letter on one side: still a letter block
        ("59CADI", "59CADI"),
        ("7I23456", "7123456"),  # digits on both sides: a one
        ("ABC12Q4", "ABC1204"),
        ("I23", "123"),  # at the edge, next to a digit
        ("IQ", "10"),  # I and Q do not count as letters for each other
        ("LEEU387", "4EEU387"),  # California's open-top 4 read as L
        ("LEEU3B7", "LEEU3B7"),  # not four letters and three digits: left alone
        ("LEEU38", "LEEU38"),
        ("AEEU387", "AEEU387"),  # only L is the 4's misreading
        ("XLEE387", "XLEE387"),  # and only in front
        ("", ""),
    ],
)
def test_standard_issue(read: str, expected: str) -> None:
    assert standard_issue(read) == expected


@pytest.mark.parametrize(
    ("read", "graphic"),
    [
        ("4ASC7399", True),  # Arizona's cactus in front of ABC1234
        ("17ABC123", True),  # a graphic in front of California's 1ABC234
        ("LANW2529", True),
        ("ASC7399", False),  # already seven: nothing to drop
        ("HHAB1234", False),  # eight real characters (a German plate): H is no graphic
        ("4ASC739", False),  # eight needed
        ("4AS07399", False),  # the rest is no common seven-character serial
    ],
)
def test_leading_graphic(read: str, graphic: bool) -> None:
    assert leading_graphic(read) is graphic


class _OneRead:
    """A recogniser that always reads the same candidate (read_frame's input)."""

    def __init__(self, candidate: PlateCandidate) -> None:
        self.candidate = candidate

    def read(self, image: object, regions: object = None) -> list[PlateCandidate]:
        return [self.candidate]


def test_read_frame_drops_the_graphic_with_its_confidence() -> None:
    """Fed: the read "4ASC7399" whose first character (the cactus) is unsure. Out: the
    serial, its seven confidences, and a plate confidence without the graphic's."""
    read = PlateCandidate("4ASC7399", 0.8 * 0.9**7, (0.8,) + (0.9,) * 7, (0, 0, 90, 30), "4ASC7399")
    image = np.zeros((8, 8, 3), np.uint8)
    (out,) = read_frame(_OneRead(read), image, Settings(standard_issue_serials=True))
    assert out.text == "ASC7399"
    assert out.char_confidences == (0.9,) * 7
    assert out.confidence == pytest.approx(0.9**7)
    (kept,) = read_frame(_OneRead(read), image, Settings(standard_issue_serials=False))
    assert kept.text == "4ASC7399"  # EU sites turn US serial rules off
