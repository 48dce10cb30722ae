"""Which state issued a plate, from the text lines printed on it (recognizers/states.py).

Fed: reads of state names as a reader gives them (exact, one letter wrong, inside a longer
line, a slogan), lines on the plate and lines elsewhere in the frame. Must hold: the state
named near the serial is returned with a confidence that falls with the match; text too
short or far from the plate names no state; Washington DC is not read as Washington; a
pass publishes a state only when its frames surely agree; an alert says whether the read
and entry states agree; the recogniser names the state printed on a plate.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from flows.passes import Observation, PassPolicy, PassTracker, vote_state
from kernel.contracts import (
    FrameMeta,
    HotlistEntry,
    HotlistSource,
    MatchInfo,
    PlateRead,
    make_alert,
)
from kernel.settings import Settings
from recognizers import load_recognizer
from recognizers.ppocr_onnx import PPOCRRecognizer
from recognizers.states import STATE_NAMES, match_state, read_state
from sim.plate_render import render_plate

SERIAL = (100, 100, 120, 30)  # x, y, w, h of the serial's line


@pytest.mark.parametrize(("text", "state"), [
    ("NEVADA", "NV"), ("NEVAOA", "NV"), ("ALASKA50", "AK"), ("PENNSYLVANIA", "PA"),
    ("WASHINGTONDC", "DC"), ("WASHINGTON", "WA"), ("LANDOFLINCOLN", "IL"),
    ("FAMOUSPOTATOES", "ID"), ("DISCOVERTHESPIRIT", "ND"), ("AMERICASDAIRYLAND", "WI"),
    ("VACATIONLAND", "ME"),
])
def test_names_slogans_and_misreads_name_their_state(text: str, state: str) -> None:
    found = match_state(text)
    assert found is not None and found[0] == state, found


def test_a_closer_match_is_surer() -> None:
    exact, misread = match_state("COLORADO"), match_state("COLQRAD0")
    assert exact is not None and misread is not None
    assert exact[0] == misread[0] == "CO" and misread[1] < exact[1] == 1.0


@pytest.mark.parametrize("text", ["OK", "ROAD", "ABC1234", "DEALER", "JAN"])
def test_short_or_unrelated_text_names_no_state(text: str) -> None:
    assert match_state(text) is None


def test_every_state_name_matches_itself() -> None:
    for code, name in STATE_NAMES.items():
        assert match_state(name) == (code, 1.0)


def test_the_state_above_the_serial_is_read_with_its_confidence() -> None:
    lines = [("OREGON", 0.9, (105, 60, 110, 20)), ("ABC123", 0.99, SERIAL)]
    found = read_state(SERIAL, lines)
    assert found is not None and found.state == "OR" and found.confidence == 0.9


def test_a_state_name_far_from_the_plate_is_not_its_state() -> None:
    # A sign across the road and a plate of another car, both outside this plate.
    lines = [("TEXAS", 0.99, (600, 90, 100, 30)), ("OHIO", 0.99, (100, 400, 100, 30))]
    assert read_state(SERIAL, lines) is None


def test_the_surer_of_two_names_wins() -> None:
    lines = [("IDAHO", 0.6, (105, 60, 110, 20)), ("UTAH", 0.95, (105, 135, 110, 20))]
    found = read_state(SERIAL, lines)
    assert found is not None and found.state == "UT"


# --- through the recogniser, the pass vote and the alert ----------------------------------


def test_a_state_line_counts_as_either_reader_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fed: a line above the serial that the plate reader read "ITAH" and the general
    text reader reads "IITAH" (Utah, as both read a real crop). Must hold: both reads are
    offered, so the plate's state is Utah; the serial's own line is offered as read."""
    import recognizers.ppocr_onnx as ppocr_onnx
    from recognizers.plate_text import TextRead, choose_candidates

    recognizer = load_recognizer(Settings())
    assert isinstance(recognizer, PPOCRRecognizer) and recognizer._text_rec is not None
    monkeypatch.setattr(ppocr_onnx, "ctc_greedy", lambda probs, charset: ("IITAH", [0.9] * 5))
    image = np.full((160, 320, 3), 200, np.uint8)
    reads = [TextRead("ITAH", (0.8,) * 4, (100, 10, 110, 28)),
             TextRead("Z860VT", (0.99,) * 6, (10, 42, 300, 100))]
    candidates = choose_candidates(reads)
    lines = recognizer._state_lines(image, reads, candidates)
    assert {text for text, _, _ in lines} >= {"ITAH", "IITAH", "Z860VT"}
    found = read_state(candidates[0].box, lines)
    assert found is not None and found.state == "UT"


def _frame(i: int, state: str, confidence: float, height: int = 30) -> Observation:
    meta = FrameMeta(camera_id="cam-1", captured_at=1_000 + 100 * i, frame_id=f"f{i}")
    return Observation(meta, "ABC123", 0.97, (0.97,) * 6, box=(10, 10, 90, height),
                       state=state, state_confidence=confidence)


def test_a_pass_names_the_state_its_frames_agree_on() -> None:
    state, sure = vote_state([_frame(0, "NV", 0.95), _frame(1, "NV", 0.9), _frame(2, "", 0.0)])
    assert state == "NV" and sure == pytest.approx(0.95)
    state, sure = vote_state([_frame(0, "NV", 0.95), _frame(1, "NM", 0.95)])
    assert state in {"NV", "NM"} and sure == pytest.approx(0.475)  # a contradiction halves it
    assert vote_state([_frame(0, "", 0.0)]) == ("", 0.0)


def test_a_published_read_carries_only_a_sure_state() -> None:
    # Fed: three settled frames of ABC123, their plates naming Nevada surely, then a pass
    # whose frames disagree. Must hold: the first read says NV, the second no state
    # (matching never matches an entry of another state: an unsure one must not block).
    tracker = PassTracker(PassPolicy())
    reads = [r for i in range(3) for r in tracker.observe_frame(
        _frame(i, "NV", 0.96).meta, [_frame(i, "NV", 0.96)])]
    assert [(r.plate, r.state, r.state_confidence) for r in reads] == [("ABC123", "NV", 0.96)]
    tracker = PassTracker(PassPolicy())
    frames = [_frame(i, s, 0.96) for i, s in enumerate(["NV", "NM", "NV"])]
    reads = [r for f in frames for r in tracker.observe_frame(f.meta, [f])]
    assert reads and all(r.state is None and r.state_confidence is None for r in reads)


def _read(state: str | None) -> PlateRead:
    return PlateRead(read_id="r1", plate="ABC123", state=state, confidence=0.97,
                     char_confidences=[0.97] * 6, camera_id="cam-1", first_seen=1,
                     last_seen=2, frames_used=["f1"], frame_count=1)


@pytest.mark.parametrize(("read_state", "entry_state", "agrees"), [
    ("CO", "CO", True), ("NV", "CO", False), (None, "CO", None), ("CO", None, None)])
def test_an_alert_says_whether_read_and_entry_states_agree(
    read_state: str | None, entry_state: str | None, agrees: bool | None
) -> None:
    entry = HotlistEntry(plate="ABC123", state=entry_state, source=HotlistSource.NCIC,
                         reason="stolen vehicle", entry_id="N1")
    match = MatchInfo(hotlist_plate="ABC123", read_plate="ABC123")
    alert = make_alert(_read(read_state), entry, match, produced=5)
    assert (alert.match.read_state, alert.match.entry_state, alert.match.state_agrees) == (
        read_state, entry_state, agrees)


def test_the_recogniser_reads_the_state_printed_on_a_plate() -> None:
    # Fed: flat synthetic plates printed with a state name above the serial. Must hold:
    # the candidate for the serial names that state.
    recognizer = PPOCRRecognizer()
    rng = np.random.default_rng(11)
    named = 0
    for state, code in (("NEVADA", "NV"), ("OREGON", "OR"), ("TEXAS", "TX")):
        plate = np.asarray(render_plate("KJX4821", rng, state=state, style=0))
        frame = cv2.copyMakeBorder(plate, 80, 80, 120, 120, cv2.BORDER_CONSTANT, value=(90,) * 3)
        candidates = recognizer.read(frame)
        assert candidates and candidates[0].text == "KJX4821", candidates
        named += candidates[0].state == code
        assert candidates[0].state in {"", code}
    assert named >= 2


def test_a_name_read_with_digits_for_letters_still_names_its_state() -> None:
    # The plate reader reads round O as 0 (serials print 0): C0L0RAD0 is Colorado.
    assert match_state("C0L0RAD0") == ("CO", 1.0)
    assert match_state("1DAH0") == ("ID", 1.0)
