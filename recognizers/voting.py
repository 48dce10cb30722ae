"""Multi-frame voting: one plate text from the reads of one vehicle pass.

Each frame's read brings per-character confidences and a weight (its plate's size: a
nearer plate is read better). The vote picks the length the reads' sure characters
support most, then the most supported character at each position, weighting each
character by its own confidence and its frame's weight. Reads one character longer or
shorter (a dropped character, a bolt read as "1") are aligned to the consensus and vote
on the positions they share, so a single bad frame neither wins nor is wasted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher


@dataclass(frozen=True)
class FrameVote:
    """What one frame read: the text and one confidence per character."""

    text: str
    char_confidences: tuple[float, ...]
    # How much this frame counts against the others: its plate's text height in px
    # (flows.passes), since a closer, larger plate is read more reliably.
    weight: float = 1.0


@dataclass(frozen=True)
class VoteResult:
    text: str
    confidence: float
    char_confidences: tuple[float, ...]
    support: int  # frames whose text equals the result exactly


def _length_vote(reads: Sequence[FrameVote]) -> int:
    weight: dict[int, float] = defaultdict(float)
    for read in reads:
        weight[len(read.text)] += read.weight * _evidence(read.char_confidences)
    # Ties go to the longer text: a dropped character is a commoner error than an extra one.
    return max(weight, key=lambda n: (weight[n], n))


def _evidence(confidences: Sequence[float]) -> float:
    """How strongly a read says its length is right: each character it is sure of (p >
    0.5) is evidence that the character is there, each unsure one against. So a read
    that lost a group (the detector missed "WXU" of WXU2335) cannot outweigh one that
    saw the group, however sure its remaining characters; a phantom character read at
    low confidence (a bolt, a band's edge) counts against its read."""
    return sum(2.0 * c - 1.0 for c in confidences)


def _aligned_positions(read: FrameVote, anchor: str) -> list[tuple[int, int]]:
    """(position in anchor, position in read) pairs that line up, for off-length reads."""
    matcher = SequenceMatcher(a=anchor, b=read.text, autojunk=False)
    pairs: list[tuple[int, int]] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        # "equal" and same-width "replace" blocks line up position by position.
        if tag == "equal" or (tag == "replace" and a1 - a0 == b1 - b0):
            pairs.extend(zip(range(a0, a1), range(b0, b1), strict=True))
    return pairs


def vote(reads: Sequence[FrameVote]) -> VoteResult:
    """Confidence-weighted, position-wise vote across the frames of one pass."""
    reads = [r for r in reads if r.text]
    if not reads:
        raise ValueError("vote needs at least one non-empty read")
    length = _length_vote(reads)
    same_length = [r for r in reads if len(r.text) == length]

    ballots: list[dict[str, float]] = [defaultdict(float) for _ in range(length)]
    voters = [0.0] * length  # weight of the frames that had a say at each position
    for read in same_length:
        for pos, (char, conf) in enumerate(zip(read.text, read.char_confidences, strict=True)):
            ballots[pos][char] += read.weight * conf
            voters[pos] += read.weight

    # The first-pass consensus anchors the alignment of reads of another length.
    anchor = "".join(max(b, key=b.__getitem__) for b in ballots)
    for read in reads:
        if len(read.text) == length:
            continue
        pairs = _aligned_positions(read, anchor)
        if len(pairs) < length - 2:  # too different to be the same plate: no say
            continue
        for a_pos, b_pos in pairs:
            ballots[a_pos][read.text[b_pos]] += read.weight * read.char_confidences[b_pos]
            voters[a_pos] += read.weight

    text = "".join(max(b, key=b.__getitem__) for b in ballots)
    # A character's confidence: its weight over the frames that had a say at its position,
    # so frames reading another character there lower it.
    char_conf = tuple(min(1.0, ballots[i][c] / voters[i]) for i, c in enumerate(text))
    support = sum(1 for r in reads if r.text == text)
    # A plate is only as sure as its least sure character.
    return VoteResult(text, min(char_conf), char_conf, support)
