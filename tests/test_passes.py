"""Vehicle passes: per-frame reads of one camera -> one read per vehicle."""

from flows.passes import Observation, PassPolicy, PassTracker
from kernel.contracts import FrameMeta


def meta(i: int, t: int, cam: str = "cam-1") -> FrameMeta:
    return FrameMeta(camera_id=cam, captured_at=t, frame_id=f"{cam}-f{i}")


def obs(i: int, t: int, text: str, conf: float = 0.95) -> Observation:
    return Observation(meta(i, t), text, conf, tuple([conf] * len(text)))


def run(tracker: PassTracker, frames: list[tuple[int, int, list[str]]], conf: float = 0.95):
    reads = []
    for i, t, texts in frames:
        reads += tracker.observe_frame(meta(i, t), [obs(i, t, x, conf) for x in texts])
    return reads + tracker.close_all()


def test_one_read_per_pass_published_when_frames_settle() -> None:
    tracker = PassTracker(PassPolicy(settle_frames=3))
    early = []
    for i, t in enumerate(range(0, 1000, 200)):
        early += tracker.observe_frame(meta(i, t), [obs(i, t, "ABC1234")])
    # Published on the third agreeing frame, while the car is still in view.
    assert [r.plate for r in early] == ["ABC1234"]
    assert early[0].frame_count == 3
    assert tracker.close_all() == []  # later frames were absorbed, not published again


def test_passes_split_on_quiet_gap_and_on_other_plates() -> None:
    frames = [(0, 0, ["ABC1234"]), (1, 200, ["ABC1234"]), (2, 400, ["XYZ987"]),
              (3, 3000, ["ABC1234"])]  # same plate after > 2 s: a second pass
    reads = run(PassTracker(PassPolicy(settle_frames=99)), frames)
    assert sorted(r.plate for r in reads) == ["ABC1234", "ABC1234", "XYZ987"]
    assert len({r.read_id for r in reads}) == 3


def test_misread_frame_joins_the_pass_and_is_outvoted() -> None:
    frames = [(0, 0, ["ABC1234"]), (1, 200, ["A8C1234"]), (2, 400, ["ABC1234"])]
    reads = run(PassTracker(PassPolicy(settle_frames=99)), frames)
    assert [r.plate for r in reads] == ["ABC1234"]
    assert reads[0].frame_count == 3


def test_frames_without_plates_move_the_clock_and_close_passes() -> None:
    tracker = PassTracker(PassPolicy(settle_frames=99, gap_ms=2000))
    assert tracker.observe_frame(meta(0, 0), [obs(0, 0, "ABC1234")]) == []
    closed = tracker.observe_frame(meta(1, 2500), [])
    assert [r.plate for r in closed] == ["ABC1234"]


def test_same_input_gives_same_read_ids() -> None:
    frames = [(i, i * 200, ["ABC1234"]) for i in range(5)]
    a = run(PassTracker(PassPolicy()), frames)
    b = run(PassTracker(PassPolicy()), frames)
    assert [r.read_id for r in a] == [r.read_id for r in b]


def test_low_confidence_read_is_published_but_not_alertable() -> None:
    reads = run(PassTracker(PassPolicy(alert_min_confidence=0.8)),
                [(i, i * 200, ["ABC1234"]) for i in range(3)], conf=0.5)
    assert len(reads) == 1 and reads[0].alertable is False


def test_open_passes_and_kept_frames_are_bounded() -> None:
    tracker = PassTracker(PassPolicy(max_open=4, max_frames=3, settle_frames=99))
    reads = []
    for i in range(10):  # ten different plates within the gap
        reads += tracker.observe_frame(meta(i, i), [obs(i, i, chr(65 + i) * 3 + str(i) * 4)])
    assert len(tracker.open) == 4
    assert len(reads) == 6  # the idle-longest were closed early, not dropped
    for i in range(10, 20):
        tracker.observe_frame(meta(i, i), [obs(i, i, "JJJ9999")])
    assert all(len(p.observations) <= 3 for p in tracker.open)


def test_frame_after_an_idle_close_rejoins_its_pass() -> None:
    """Fed: two frames of ABC1234, then the idle timer closes the camera's passes (the flow
    fell behind), then three more frames captured within the gap. Must come out: one read
    of the vehicle, not a second read (and a second alert) for the late frames."""
    tracker = PassTracker(PassPolicy(settle_frames=99, gap_ms=2000))
    reads = []
    for i, t in ((0, 0), (1, 200)):
        reads += tracker.observe_frame(meta(i, t), [obs(i, t, "ABC1234")])
    reads += tracker.close_all()  # wall-clock idle close
    assert [r.plate for r in reads] == ["ABC1234"]
    for i, t in ((2, 400), (3, 600), (4, 800)):
        reads += tracker.observe_frame(meta(i, t), [obs(i, t, "ABC1234")])
    reads += tracker.close_all()
    assert [r.plate for r in reads] == ["ABC1234"]
    # A frame captured after the gap is a new vehicle pass again.
    late = tracker.observe_frame(meta(5, 3000), [obs(5, 3000, "ABC1234")]) + tracker.close_all()
    assert [r.plate for r in late] == ["ABC1234"] and late[0].read_id != reads[0].read_id


def test_late_frame_that_changes_the_vote_publishes_a_correction() -> None:
    tracker = PassTracker(PassPolicy(settle_frames=99, gap_ms=2000))
    first = tracker.observe_frame(meta(0, 0), [obs(0, 0, "A8C1234", conf=0.85)])
    first += tracker.close_all()
    later = []
    # Enough sure frames that the corrected character is itself sure (>= settle 0.8).
    for i, t in ((1, 200), (2, 400), (3, 600), (4, 800)):
        later += tracker.observe_frame(meta(i, t), [obs(i, t, "ABC1234", conf=1.0)])
    later += tracker.close_all()
    assert [r.plate for r in first] == ["A8C1234"]
    assert [r.plate for r in later] == ["ABC1234"]
    assert later[0].read_id != first[0].read_id  # a correction has its own id


def _boxed(i: int, t: int, text: str, box: tuple[int, int, int, int]) -> Observation:
    return Observation(meta(i, t), text, 0.9, tuple([0.9] * len(text)), box=box)


def test_garbled_far_frame_joins_the_pass_where_its_plate_is() -> None:
    """Fed: a far first frame read "739789" (similarity to YX97897 below the text bar),
    then three frames of YX97897, the box creeping down and growing. Out: one pass,
    YX97897, with all four frames; without boxes the garbled frame is a pass of its own."""
    texts = ["739789", "YX97897", "YX97897", "YX97897"]
    boxes = [(600, 300, 70, 22), (590, 318, 80, 25), (578, 338, 90, 28), (565, 360, 100, 31)]
    tracker = PassTracker(PassPolicy(settle_frames=99))
    reads = []
    for i, (text, box) in enumerate(zip(texts, boxes, strict=True)):
        reads += tracker.observe_frame(meta(i, i * 200), [_boxed(i, i * 200, text, box)])
    reads += tracker.close_all()
    assert [(r.plate, r.frame_count) for r in reads] == [("YX97897", 4)]

    unboxed = run(PassTracker(PassPolicy(settle_frames=99)),
                  [(i, i * 200, [t]) for i, t in enumerate(texts)])  # fmt: skip
    assert sorted(r.plate for r in unboxed) == ["739789", "YX97897"]


def test_a_plate_in_the_next_lane_stays_its_own_pass() -> None:
    """Fed: two vehicles side by side, plates 400 px apart, reads 0.57 similar
    (ABC1234 / ABD5634). Out: two passes: nearness joins only where the plate was."""
    tracker = PassTracker(PassPolicy(settle_frames=99))
    reads = []
    for i in range(3):
        t = i * 200
        reads += tracker.observe_frame(meta(i, t), [
            _boxed(i, t, "ABC1234", (300, 400 + 10 * i, 90, 28)),
            _boxed(i, t, "ABD5634", (700, 400 + 10 * i, 90, 28)),
        ])  # fmt: skip
    reads += tracker.close_all()
    assert sorted(r.plate for r in reads) == ["ABC1234", "ABD5634"]


def test_the_nearer_plates_of_a_pass_count_more() -> None:
    # A car approaching: its plate's text box grows from 20 to 60 px. The two far frames
    # read a look-alike, the nearer one reads the plate.
    tracker = PassTracker(PassPolicy(settle_frames=99))
    heights = {0: 20, 1: 24, 2: 60}
    texts = {0: "FON4797", 1: "FON4797", 2: "FDN4797"}
    for i, t in enumerate((0, 200, 400)):
        o = Observation(meta(i, t), texts[i], 0.95, (0.95,) * 7, box=(100, 100, 4 * heights[i],
                                                                       heights[i]))
        assert tracker.observe_frame(meta(i, t), [o]) == []
    assert [r.plate for r in tracker.close_all()] == ["FDN4797"]


def test_a_pass_keeps_one_crop_in_state_and_the_read_shows_the_best_frames() -> None:
    # Fed: 8 frames of one plate, each with its own 3 KB crop, confidence rising, one
    # misread in the middle (the most confident of all). Must hold: the open pass (what
    # recovery snapshots) holds one crop, not eight; the read shows the crop of the most
    # confident frame that reads the voted text, not the misread's.
    import base64

    tracker = PassTracker(PassPolicy(settle_frames=99))
    for i in range(8):
        text, conf = ("ABC1284", 0.99) if i == 4 else ("ABC1234", 0.80 + i * 0.02)
        o = Observation(meta(i, i * 100), text, conf, tuple([conf] * 7),
                        crop_jpeg=bytes([i]) * 3000)
        tracker.observe_frame(meta(i, i * 100), [o])
        [open_pass] = tracker.open
        kept = [o for o in open_pass.observations if o.crop_jpeg]
        assert len(kept) == 1 and (open_pass.first.crop_jpeg in (b"", kept[0].crop_jpeg))
    [read] = tracker.close_all()
    assert read.plate == "ABC1234"
    assert base64.b64decode(read.crop_jpeg_b64) == bytes([7]) * 3000


def test_reads_of_replayed_frames_are_marked_replayed_with_the_same_ids() -> None:
    # Fed: the same 4 frames to two trackers, the second time marked replayed (read
    # again after a restart). Must hold: the same read (same id, plate, frames), marked
    # replayed only the second time.
    frames = [(i, i * 200) for i in range(4)]
    live, again = PassTracker(PassPolicy()), PassTracker(PassPolicy())
    first = [r for i, t in frames for r in live.observe_frame(meta(i, t), [obs(i, t, "ABC1234")])]
    replay = [r for i, t in frames
              for r in again.observe_frame(meta(i, t).model_copy(update={"replayed": True}),
                                           [obs(i, t, "ABC1234")])]
    assert [r.replayed for r in first] == [False] and [r.replayed for r in replay] == [True]
    assert replay[0].model_copy(update={"replayed": False}) == first[0]


def test_a_pass_rebuilt_from_replayed_frames_is_marked_replayed_when_a_live_frame_closes_it(
) -> None:
    # Fed: 2 frames of a vehicle read again after a restart (too few to settle), then a
    # live frame of the camera, a gap later, with no plate. Must hold: the pass's read,
    # published on that live frame, is marked replayed (it may have gone out before the
    # crash); a pass of live frames only is not.
    tracker = PassTracker(PassPolicy())
    for i, t in ((0, 0), (1, 200)):
        again = meta(i, t).model_copy(update={"replayed": True})
        tracker.observe_frame(again, [Observation(again, "ABC1234", 0.95, (0.95,) * 7)])
    [read] = tracker.observe_frame(meta(2, 5000), [])
    assert read.plate == "ABC1234" and read.replayed
    live = PassTracker(PassPolicy())
    for i, t in ((0, 0), (1, 200)):
        live.observe_frame(meta(i, t), [obs(i, t, "ABC1234")])
    [read] = live.observe_frame(meta(2, 5000), [])
    assert not read.replayed
