"""A read's confidence counts each character's look-alike class (0/O/D/Q, 1/I/L, 6/G,
...), which hotlist matching treats as one character: an unsure choice inside a class
does not make an alert less sure, an unsure choice between classes does."""

import math

import pytest

from recognizers.base import PlateCandidate
from recognizers.lookalike_confidence import lookalike_confidence


def _candidate(text: str, probs: list[float], alternatives: list[list[tuple[str, float]]]):
    alts = tuple(((c, p), *more) for c, p, more in zip(text, probs, alternatives, strict=True))
    return PlateCandidate(text, math.prod(probs), tuple(probs), (0, 0, 90, 30), text, alts)


def test_a_choice_inside_a_class_is_sure() -> None:
    """Fed: 6HP995 with the 6 at 0.59 and G at 0.40 (6/G is one class). Out: the 6 at
    0.99, the plate as sure as its other characters."""
    read = _candidate("6HP995", [0.59, 1, 1, 1, 1, 1], [[("G", 0.40)], [], [], [], [], []])
    out = lookalike_confidence(read)
    assert out.text == "6HP995"
    assert out.char_confidences[0] == pytest.approx(0.99)
    assert out.confidence == pytest.approx(0.99)


def test_a_choice_between_classes_stays_unsure() -> None:
    """Fed: CNH3083 with N at 0.57, H at 0.36 and M at 0.13 (no class holds N, H or M):
    the N keeps 0.57. A class-mate's probability is added, capped at 1."""
    read = _candidate(
        "CNH3083",
        [1, 0.57, 0.97, 1, 1, 1, 1],
        [[], [("H", 0.36), ("M", 0.13)], [("N", 0.01)], [], [("S", 0.02)], [("O", 0.9)], []],
    )
    out = lookalike_confidence(read)
    assert out.char_confidences == pytest.approx((1, 0.57, 0.97, 1, 1, 1, 1))
    assert out.confidence == pytest.approx(0.57 * 0.97)


def test_without_alternatives_nothing_changes() -> None:
    read = PlateCandidate("6HP995", 0.59, (0.59, 1, 1, 1, 1, 1), (0, 0, 9, 3), "6HP995")
    assert lookalike_confidence(read) == read
