"""Multi-frame voting: what a pass's frames read -> one plate text."""

import pytest

from recognizers.voting import FrameVote, vote


def fv(text: str, conf: float = 0.9) -> FrameVote:
    return FrameVote(text, tuple([conf] * len(text)))


def test_unanimous_frames_give_their_text_with_their_confidence() -> None:
    result = vote([fv("ABC1234", 0.95)] * 4)
    assert result.text == "ABC1234"
    assert result.support == 4
    assert result.confidence == pytest.approx(0.95)


def test_one_misread_character_is_outvoted_position_by_position() -> None:
    # Every frame has one different wrong character: no frame is right, the vote is.
    frames = [fv("ABC1Z34"), fv("A8C1234"), fv("ABC12J4"), fv("ABC1234", 0.6)]
    result = vote(frames)
    assert result.text == "ABC1234"
    assert result.support == 1


def test_confident_characters_beat_unsure_majority() -> None:
    frames = [
        FrameVote("ABC1234", (0.99,) * 7),
        FrameVote("ABC1Z34", (0.99, 0.99, 0.99, 0.99, 0.2, 0.99, 0.99)),
        FrameVote("ABC1Z34", (0.99, 0.99, 0.99, 0.99, 0.2, 0.99, 0.99)),
    ]
    assert vote(frames).text == "ABC1234"


def test_dropped_and_extra_characters_still_vote_on_aligned_positions() -> None:
    frames = [fv("7ABC123"), fv("7ABC123"), fv("7AC123"), fv("17ABC123")]
    result = vote(frames)
    assert result.text == "7ABC123"
    # The off-length reads agreed with the consensus, so confidence stays high.
    assert result.confidence > 0.8


def test_disagreement_lowers_the_plate_confidence() -> None:
    agreed = vote([fv("ABC1234")] * 4)
    split = vote([fv("ABC1234"), fv("ABC1284"), fv("ABC1234"), fv("ABC1284")])
    assert split.confidence < agreed.confidence
    assert min(split.char_confidences) == split.confidence


def test_empty_input_is_an_error() -> None:
    with pytest.raises(ValueError):
        vote([FrameVote("", ())])
