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


def test_a_read_that_lost_a_group_does_not_outvote_the_read_that_saw_it() -> None:
    # A far frame's detector missed "WXU" and read the rest very surely; the near frame
    # saw all seven characters, less surely overall (benchmarks.voting, severe).
    frames = [fv("2335", 0.98), FrameVote("WXU2335", (0.8, 0.95, 0.85, 1.0, 1.0, 1.0, 0.95))]
    assert vote(frames).text == "WXU2335"


def test_a_phantom_character_read_unsurely_does_not_lengthen_the_plate() -> None:
    # A band's edge read as "E" in front of the plate, at 0.3: it counts against its read.
    frames = [fv("RK641AL", 0.97), FrameVote("ERK641AL", (0.3,) + (0.97,) * 7)]
    assert vote(frames).text == "RK641AL"


def test_a_nearer_larger_plate_outweighs_far_frames() -> None:
    # Two far frames read D as 0, the two near frames read it right, all equally surely.
    far = [FrameVote("5790SE", (0.99,) * 6, weight=29), FrameVote("5790SE", (0.99,) * 6, 30)]
    near = [FrameVote("579DSE", (0.99,) * 6, weight=46), FrameVote("579DSE", (0.99,) * 6, 49)]
    assert vote(far + near).text == "579DSE"
    # Unweighted, the far frames come first and the tie goes their way.
    assert vote([FrameVote(f.text, f.char_confidences) for f in far + near]).text == "5790SE"
