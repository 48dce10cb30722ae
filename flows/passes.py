"""Grouping per-frame reads into vehicle passes, one camera at a time.

A camera sees each vehicle in several frames. Reads of one camera join an open pass when
their text is close to the pass's consensus (a misread frame still joins) and they come
within the quiet gap of the pass's last read. A read garbled further (a far, blurred
first frame: "739789" for YX97897) still joins when it is also where the pass's plate
was last seen: a vehicle moves a little between frames, and two vehicles' plates are
lanes apart. A pass is published:

- early, as soon as `settle_frames` frames agree with a confident consensus, so that an
  alert reaches the dispatcher while the vehicle is still in view; later frames of the
  same vehicle are absorbed, not published again;
- otherwise when it closes: after `gap_ms` of capture time with no read of it (frames of
  the camera with other plates, or no plate, move the camera's clock on), after
  `gap_ms` of wall time with nothing from the camera while the flow is live (see
  flows.pipeline.PassLogic), or at the end of the input.

A pass closed by the wall-clock timer is kept for one more gap of capture time: when the
flow falls behind, a camera's next frame can reach it more than a gap after the previous
one, although it was captured within the gap. Such a frame rejoins its pass (publishing
only a correction, if the vote changes) instead of starting a second read of the same
vehicle, and a second alert.

Frames of one camera arrive in capture order (one Kafka partition per camera key, read by
one worker), so the same input always gives the same passes, the same ids and the same
votes, whatever the number of workers. State is bounded: at most `max_open` passes per
camera and `max_frames` reads kept per pass (the most confident).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher

from kernel.contracts import FrameMeta, PlateRead, b64, stable_id
from recognizers.voting import FrameVote, vote


@dataclass(frozen=True)
class Observation:
    """One plate candidate read in one frame."""

    meta: FrameMeta
    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    crop_jpeg: bytes = b""
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in the frame
    state: str = ""  # the state its plate's text names, "" if none was read
    state_confidence: float = 0.0


@dataclass
class OpenPass:
    first: Observation
    observations: list[Observation] = field(default_factory=list)
    last_seen: int = 0
    frames_seen: int = 0
    published_text: str | None = None
    consensus: str = ""
    last_box: tuple[int, int, int, int] | None = None

    @property
    def read_id(self) -> str:
        return stable_id("read", self.first.meta.camera_id, self.first.meta.frame_id)


@dataclass(frozen=True)
class PassPolicy:
    gap_ms: int = 2000
    max_frames: int = 12
    max_open: int = 32
    settle_frames: int = 3
    settle_confidence: float = 0.80
    alert_min_confidence: float = 0.80
    # Two reads are the same plate when their similarity ratio reaches this (7 chars: one
    # wrong or missing character still joins).
    join_similarity: float = 0.70
    # A read this similar joins a pass whose last plate box is within this many plate
    # widths of its own (centre to centre).
    near_join_similarity: float = 0.40
    near_join_widths: float = 1.5
    # The flow counts as live when frames arrive within this long of their capture
    # (camera clocks drift by seconds); only then does wall-clock idleness close passes.
    live_lag_ms: int = 10_000
    # Behind (replay, backlog): a camera silent this long in wall time is closed anyway.
    stale_idle_ms: int = 120_000
    # A pass's read carries the state its frames read only this surely: hotlist matching
    # never matches an entry of another state, so an unsure state must not block an alert.
    state_min_confidence: float = 0.90


def similarity(a: str, b: str) -> float:
    return SequenceMatcher(a=a, b=b, autojunk=False).ratio()


class PassTracker:
    """The open passes of one camera. Feed it reads in capture order."""

    def __init__(self, policy: PassPolicy) -> None:
        self.camera_id = ""  # known from the first frame: bytewax builds state before it
        self.policy = policy
        self.open: list[OpenPass] = []
        # Closed by close_all() (idle timer, end of input), still within a gap of capture
        # time of the camera's clock: a late frame of the same vehicle rejoins them.
        self.recently_closed: list[OpenPass] = []
        self.clock_ms = 0  # latest capture time seen from this camera

    def observe_frame(self, meta: FrameMeta, observations: list[Observation]) -> list[PlateRead]:
        """All reads of one frame (possibly none). Returns the reads to publish now."""
        self.camera_id = meta.camera_id
        self.clock_ms = max(self.clock_ms, meta.captured_at)
        out = self._close_quiet(self.clock_ms)
        for obs in observations:
            out.extend(self._observe(obs))
        if meta.replayed:  # re-read after a restart: these may have gone out before
            out = [r.model_copy(update={"replayed": True}) for r in out]
        return out

    def close_all(self) -> list[PlateRead]:
        out = [r for p in self.open if (r := self._final_read(p)) is not None]
        self.recently_closed = (self.recently_closed + self.open)[-self.policy.max_open :]
        self.open.clear()
        return out

    def _observe(self, obs: Observation) -> list[PlateRead]:
        target = self._matching_pass(obs)
        out: list[PlateRead] = []
        if target is None:
            if len(self.open) >= self.policy.max_open:
                # Bounded state: the pass idle longest is closed early.
                oldest = min(self.open, key=lambda p: p.last_seen)
                self.open.remove(oldest)
                if (read := self._final_read(oldest)) is not None:
                    out.append(read)
            target = OpenPass(first=obs, consensus=obs.text)
            self.open.append(target)
        target.frames_seen += 1
        target.last_seen = max(target.last_seen, obs.meta.captured_at)
        target.last_box = obs.box or target.last_box
        target.observations.append(obs)
        if len(target.observations) > self.policy.max_frames:
            # Keep the most confident reads, but always the first (it names the pass).
            worst = min(target.observations[1:], key=lambda o: o.confidence)
            target.observations.remove(worst)
        result = vote([_frame_vote(o) for o in target.observations])
        target.consensus = result.text
        _keep_one_crop(target)
        if (
            target.published_text is None
            and result.support >= self.policy.settle_frames
            and result.confidence >= self.policy.settle_confidence
        ):
            out.append(self._publish(target))
        return out

    def _matching_pass(self, obs: Observation) -> OpenPass | None:
        best, best_score = None, self.policy.join_similarity
        for candidate in self.open + self.recently_closed:
            if obs.meta.captured_at - candidate.last_seen > self.policy.gap_ms:
                continue
            score = similarity(obs.text, candidate.consensus)
            near = self._near(obs.box, candidate.last_box)
            if self.policy.near_join_similarity <= score < self.policy.join_similarity and near:
                score = self.policy.join_similarity  # just reaches the bar: a text match wins
            if score >= best_score:
                best, best_score = candidate, score
        if best is not None and best in self.recently_closed:
            self.recently_closed.remove(best)
            self.open.append(best)
        return best

    def _near(
        self, box: tuple[int, int, int, int] | None, last: tuple[int, int, int, int] | None
    ) -> bool:
        if box is None or last is None:
            return False
        (x, y, w, h), (lx, ly, lw, lh) = box, last
        dx = (x + w / 2) - (lx + lw / 2)
        dy = (y + h / 2) - (ly + lh / 2)
        return (dx * dx + dy * dy) ** 0.5 <= self.policy.near_join_widths * max(w, lw)

    def _close_quiet(self, now_ms: int) -> list[PlateRead]:
        gap = self.policy.gap_ms
        self.recently_closed = [p for p in self.recently_closed if now_ms - p.last_seen <= gap]
        closing = [p for p in self.open if now_ms - p.last_seen > gap]
        self.open = [p for p in self.open if p not in closing]
        return [r for p in closing if (r := self._final_read(p)) is not None]

    def _final_read(self, p: OpenPass) -> PlateRead | None:
        """The read to publish when a pass closes: nothing if it was published already
        with the same text; a corrected read if the full vote now says otherwise."""
        if p.published_text is None:
            return self._publish(p)
        result = vote([_frame_vote(o) for o in p.observations])
        if result.text != p.published_text and result.confidence >= self.policy.settle_confidence:
            return self._publish(p, correction_of=p.published_text)
        return None

    def _publish(self, p: OpenPass, correction_of: str | None = None) -> PlateRead:
        result = vote([_frame_vote(o) for o in p.observations])
        p.published_text = result.text
        # The crop of the best frame reading the voted text; only one is kept per pass
        # (_keep_one_crop), so a late change of vote may show another frame's crop.
        best = max(p.observations,
                   key=lambda o: (o.text == result.text, bool(o.crop_jpeg), o.confidence))
        meta = p.first.meta
        read_id = p.read_id if correction_of is None else stable_id(p.read_id, result.text)
        state, state_confidence = vote_state(p.observations)
        sure = state_confidence >= self.policy.state_min_confidence
        # A pass with a frame read again after a restart may have gone out before the
        # crash, whichever frame publishes it now: a live frame of the camera can close a
        # pass rebuilt from replayed frames (observe_frame marks only its own frame's).
        replayed = any(o.meta.replayed for o in p.observations)  # the first frame included
        return PlateRead(
            read_id=read_id,
            plate=result.text,
            state=state if sure else None,
            state_confidence=round(state_confidence, 4) if sure else None,
            confidence=round(result.confidence, 4),
            char_confidences=[round(c, 4) for c in result.char_confidences],
            camera_id=self.camera_id,
            first_seen=p.first.meta.captured_at,
            last_seen=p.last_seen,
            frames_used=[o.meta.frame_id for o in p.observations],
            frame_count=p.frames_seen,
            crop_jpeg_b64=b64(best.crop_jpeg),
            lat=meta.lat,
            lon=meta.lon,
            heading=meta.heading,
            lane=meta.lane,
            alertable=result.confidence >= self.policy.alert_min_confidence,
            replayed=replayed,
        )


def _keep_one_crop(p: OpenPass) -> None:
    """Drop the crops of all but the pass's best frame for its current consensus: the
    read shows one crop, and the state (snapshotted for recovery every few seconds)
    stays ~3 KB per pass, not a crop per frame."""
    if len(p.observations) < 2:
        return
    best = max(p.observations, key=lambda o: (o.text == p.consensus, o.confidence))
    p.observations = [
        o if o is best or not o.crop_jpeg else replace(o, crop_jpeg=b"")
        for o in p.observations
    ]
    if p.first is not best and p.first.crop_jpeg:
        p.first = replace(p.first, crop_jpeg=b"")


def vote_state(observations: list[Observation]) -> tuple[str, float]:
    """The state the pass's frames name most (each frame by its plate's size and its own
    confidence) and how sure: its best frame's confidence times its share of the frames
    that read a state (frames naming another state lower it; frames naming none do not)."""
    weight: dict[str, float] = {}
    best: dict[str, float] = {}
    for o in observations:
        if o.state:
            w = float(max(1, o.box[3])) if o.box else 1.0
            weight[o.state] = weight.get(o.state, 0.0) + w * o.state_confidence
            best[o.state] = max(best.get(o.state, 0.0), o.state_confidence)
    if not weight:
        return "", 0.0
    state = max(weight, key=lambda s: (weight[s], s))
    return state, best[state] * weight[state] / sum(weight.values())


def _frame_vote(o: Observation) -> FrameVote:
    # A frame counts by its plate's text height: the vehicle nearer, its plate read better.
    if o.box is None:
        return FrameVote(o.text, o.char_confidences)
    return FrameVote(o.text, o.char_confidences, weight=float(max(1, o.box[3])))
