"""The learned candidate scorer (recognizers/candidate_scorer.py) and its training.

Fed: hand-built candidates of one frame, modelled on a held-out Maryland crop (the serial
read surely but without its first character, "HB822", which the recogniser's hand-set
score ranked first; the whole serial DHB822 read as surely from a wider box; a small
unsure month sticker), rows of
features with known labels, and scorer files written for other features. Must hold: the
shipped scorer ranks the serial first in the flow's frame reader, and only when it is on;
a published probability keeps the characters multiplying to it; training learns the
direction of a feature that decides the label and refuses data it cannot learn from; a
scorer file that does not fit this version is refused, naming the file and the fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from kernel.settings import Settings
from recognizers.base import Box, PlateCandidate
from recognizers.candidate_scorer import (
    FEATURES,
    candidate_features,
    default_scorer_path,
    load_scorer,
    with_confidence,
)
from recognizers.frame_reader import read_frame
from recognizers.training.scorer import choose_l2, fit_logistic, train_scorer

SHAPE = (720, 1280, 3)


def _candidate(text: str, probs: Sequence[float], box: Box, raw: str | None = None,
               runner_up: float = 0.0) -> PlateCandidate:
    alternatives = tuple(((ch, p), ("X" if ch != "X" else "Y", runner_up))
                         for ch, p in zip(text, probs, strict=True))
    return PlateCandidate(text, math.prod(probs), tuple(probs), box, raw or text, alternatives)


SHORT = _candidate("HB822", [0.999] * 5, (60, 40, 150, 50))
PLATE = _candidate("DHB822", [0.999] * 6, (30, 40, 185, 50))
STICKER = _candidate("SEP4", [0.7, 0.6, 0.8, 0.7], (200, 10, 20, 10), runner_up=0.25)


class _FixedRecognizer:
    """A recogniser that finds the same candidates in every frame, in its own order."""

    def __init__(self, candidates: list[PlateCandidate]) -> None:
        self.candidates = candidates

    def read(self, image: np.ndarray, regions: object = None) -> list[PlateCandidate]:
        return list(self.candidates)


def test_the_shipped_scorer_ranks_the_whole_serial_above_a_cut_one_and_a_sticker() -> None:
    scorer = load_scorer(default_scorer_path())
    p_short, p_plate, p_sticker = scorer.probabilities([SHORT, PLATE, STICKER])
    assert p_plate > p_short and p_plate > p_sticker
    assert all(0.0 <= p <= 1.0 for p in (p_short, p_plate, p_sticker))


def test_the_frame_reader_ranks_by_the_scorer_only_when_it_is_on() -> None:
    image = np.zeros(SHAPE, np.uint8)
    recognizer = _FixedRecognizer([SHORT, PLATE, STICKER])
    on = read_frame(recognizer, image, Settings(candidate_scorer=True))
    off = read_frame(recognizer, image, Settings(candidate_scorer=False))
    assert on[0].text == "DHB822"
    # The sticker (0.24) is under the candidate floor either way.
    assert [c.text for c in off] == ["HB822", "DHB822"]
    # Ranked second, the cut serial is a piece of the whole one on its plate: not published.
    assert [c.text for c in on] == ["DHB822"]
    # Ranking alone leaves each read's own confidence as it was.
    assert on[0].confidence == next(c.confidence for c in off if c.text == "DHB822")


def test_a_piece_of_a_better_candidate_on_the_same_plate_is_not_published() -> None:
    """Fed: DHB822 ranked first, then its pieces HB822 and DHB on boxes inside its own, a
    plate elsewhere in the frame (XK822) and a piece-like text on another car (B822, its
    box apart). Out: the pieces on the plate go; the other plates stay, and the freed
    slot goes to the next candidate."""
    image = np.zeros(SHAPE, np.uint8)
    group = _candidate("DHB", [0.999] * 3, (30, 40, 80, 50))
    elsewhere = _candidate("XK822", [0.99] * 5, (700, 300, 150, 45))
    apart = _candidate("B822", [0.99] * 4, (900, 500, 120, 40))
    settings = Settings(candidate_scorer=False, max_candidates_per_frame=3)
    reads = read_frame(_FixedRecognizer([PLATE, SHORT, group, elsewhere, apart]), image,
                       settings)
    assert [c.text for c in reads] == ["DHB822", "XK822", "B822"]


def test_a_published_probability_is_the_reads_confidence_and_its_characters_product() -> None:
    image = np.zeros(SHAPE, np.uint8)
    settings = Settings(candidate_scorer=True, scorer_confidence=True)
    reads = read_frame(_FixedRecognizer([SHORT, PLATE, STICKER]), image, settings)
    expected = dict(zip(["HB822", "DHB822", "SEP4"],
                        load_scorer(default_scorer_path()).probabilities(
                            [SHORT, PLATE, STICKER]), strict=True))
    for read in reads:
        assert read.confidence == pytest.approx(expected[read.text])
        assert math.prod(read.char_confidences) == pytest.approx(read.confidence, rel=1e-6)


def test_scaling_keeps_the_characters_order_and_caps_them_at_one() -> None:
    c = _candidate("ABC123", [0.5, 0.9, 0.99, 0.8, 0.7, 0.95], (0, 0, 60, 20))
    lower = with_confidence(c, 0.05)
    assert math.prod(lower.char_confidences) == pytest.approx(0.05)
    assert np.argsort(lower.char_confidences).tolist() == np.argsort(c.char_confidences).tolist()
    higher = with_confidence(c, 0.99)
    assert max(higher.char_confidences) <= 1.0
    assert higher.confidence == 0.99


def test_features_are_one_per_name_and_see_the_other_candidates() -> None:
    alone = dict(zip(FEATURES, candidate_features(SHORT, [SHORT], 0), strict=True))
    beside = dict(zip(FEATURES, candidate_features(SHORT, [SHORT, PLATE, STICKER], 0),
                      strict=True))
    sticker = dict(zip(FEATURES, candidate_features(STICKER, [SHORT, PLATE, STICKER], 2),
                       strict=True))
    assert len(alone) == len(beside) == len(FEATURES)
    assert alone["inside_other"] == 0.0 and beside["inside_other"] == 1.0
    assert sticker["height_of_tallest"] == pytest.approx(10 / 50)
    assert beside["log_candidates"] > alone["log_candidates"]


def test_training_learns_the_direction_of_a_deciding_feature() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = (x[:, 1] + 0.3 * rng.normal(size=400) > 0).astype(float)
    beta = fit_logistic(x, y, l2=1.0)
    assert beta[1] > 2.0 and abs(beta[0]) < 0.5 and abs(beta[2]) < 0.5
    groups = np.arange(400) // 2  # two candidates per image: folds keep them together
    l2, losses = choose_l2(x, y, groups)
    assert str(l2) in losses and all(len(v) == 5 for v in losses.values())


def test_training_refuses_rows_that_are_all_right_or_all_wrong() -> None:
    x = np.ones((10, len(FEATURES)))
    with pytest.raises(ValueError, match="both right and wrong"):
        train_scorer(x, np.ones(10), np.arange(10))


def test_a_scorer_file_for_other_features_is_refused_by_name(tmp_path: Path) -> None:
    stale = json.loads(default_scorer_path().read_text())
    stale["features"] = stale["features"][:-1]
    path = tmp_path / "old_scorer.json"
    path.write_text(json.dumps(stale))
    with pytest.raises(ValueError, match=r"old_scorer\.json.*retrain"):
        load_scorer(path)
