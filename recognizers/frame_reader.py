"""What the flow reads from one frame: the recogniser's candidates after the flow's own
filters. The flow and the accuracy benchmark both call `read_frame`, so the benchmark
measures exactly what the flow publishes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recognizers.base import Box, PlateCandidate, Recognizer, boxes_overlap
from recognizers.candidate_scorer import (
    CandidateScorer,
    default_scorer_path,
    load_scorer,
    with_confidence,
)
from recognizers.exposure import stretch_contrast
from recognizers.issuer_glyphs import leading_graphic, standard_issue
from recognizers.lookalike_confidence import lookalike_confidence
from recognizers.plate_text import KEEP_END_LETTER_PROB, added_at_ends
from recognizers.serial_formats import fit_serial_format

if TYPE_CHECKING:
    from kernel.settings import Settings

__all__ = ["read_frame"]


def read_frame(
    recognizer: Recognizer,
    image: NDArray[np.uint8],
    settings: Settings,
    regions: Sequence[Box] | None = None,
) -> list[PlateCandidate]:
    """Plate candidates of one frame, best first: at most `max_candidates_per_frame`,
    none below `min_candidate_confidence`, none that is a piece of a better one on the
    same plate (_without_pieces). When `standard_issue_serials` is on: I/O/Q
    read as digits, a graphic read in front of a seven-character serial dropped, and a
    read one likely alternative character away from a US serial layout read in it.
    Confidences are then those of each character's look-alike class, which is what hotlist
    matching compares (recognizers/lookalike_confidence.py). `regions`: where in the
    frame it moved (Recognizer.read); None, everywhere. A dim frame is read with its
    levels stretched (`stretch_contrast_below`, recognizers/exposure.py), and where that
    read meets the frame's side edge, also as it came (`dim_frame_read_unstretched`,
    _with_unstretched_ends)."""
    stretched = stretch_contrast(image, settings.stretch_contrast_below)
    found = recognizer.read(stretched, regions)
    if (stretched is not image and settings.dim_frame_read_unstretched
            and any(_at_side_edge(c.box, image.shape[1]) for c in found)):
        found = _with_unstretched_ends(found, recognizer.read(image, regions))
    # The scorer learned from every candidate the recogniser gives, before any filter.
    probability = (
        dict(zip(map(id, found), scorer_of(settings).probabilities(found),
                 strict=True))
        if settings.candidate_scorer else {}
    )
    kept = [c for c in found if c.confidence >= settings.min_candidate_confidence]
    if probability:
        kept.sort(key=lambda c: probability[id(c)], reverse=True)
    kept = _without_pieces(kept)[: settings.max_candidates_per_frame]
    if settings.standard_issue_serials:
        kept = [
            fit_serial_format(_without_leading_graphic(replace(c, text=standard_issue(c.text))))
            for c in kept
        ]
    out = [lookalike_confidence(c) for c in kept]
    if probability and settings.scorer_confidence:
        # Set after the look-alike classes: the scorer's probability is the read's.
        out = [with_confidence(c, probability[id(k)]) for c, k in zip(out, kept, strict=True)]
    return out


def scorer_of(settings: Settings) -> CandidateScorer:
    """The candidate scorer the settings name (loaded once per file)."""
    return load_scorer(settings.scorer_model or default_scorer_path())


def _without_pieces(candidates: Sequence[PlateCandidate]) -> list[PlateCandidate]:
    """`candidates` less those whose text is part of an earlier one's on a box that overlaps
    it: a group of the same plate read on its own (HB822 and DHB of DHB822), not another
    plate. Published, such a piece can alert on another listed plate (HB822 matched a
    priority-1 YB822 one character away on held-out US crops); on val no piece was the
    plate, where 11 of 69 US crops gave one (benchmarks/RESULTS.md)."""
    out: list[PlateCandidate] = []
    for candidate in candidates:
        if not any(candidate.text != kept.text and candidate.text in kept.text
                   and boxes_overlap(candidate.box, kept.box) for kept in out):
            out.append(candidate)
    return out


def _with_unstretched_ends(
    stretched: Sequence[PlateCandidate], unstretched: Sequence[PlateCandidate]
) -> list[PlateCandidate]:
    """`stretched` (a dim frame's reads with its levels stretched), each replaced by the
    surest read of the frame as it came, on an overlapping box, that is it with end
    characters added, each read at >= KEEP_END_LETTER_PROB (the bar a second look must
    clear to drop an end letter, plate_text.drops_end_letter; INC8808's I here: 0.51).

    The stretch finds plates the detector misses at low contrast, but it can fade a thin
    end stroke against the frame's edge: BR val crops read "NC8808", "BU2204" and "PVX927"
    stretched and whole unstretched. Only an extension replaces a read (a read that
    differs is not a surer reading of the same characters). Val BR 96.5 -> 97.1% exact,
    US and EU unchanged; BR train +6 crops, none lost; test unchanged
    (benchmarks/RESULTS.md)."""
    out = []
    for read in stretched:
        longer = [u for u in unstretched
                  if boxes_overlap(u.box, read.box) and _extends(read, u)]
        if not longer:
            out.append(read)
            continue
        best = max(longer, key=lambda u: u.confidence)
        if read.state and not best.state:
            best = replace(best, state=read.state, state_confidence=read.state_confidence)
        out.append(best)
    return out


def _at_side_edge(box: Box, frame_width: int) -> bool:
    """Whether a read's box comes within its own height (about a character) of the
    frame's left or right edge, where the stretch can fade an end character into it.
    Every read the unstretched look mended on BR val and train was so; scenes' plates
    rarely are, so they are not read twice (US dev: 10 of 72 scenes are stretched)."""
    x, _, w, h = box
    return x < h or x + w > frame_width - h


def _extends(short: PlateCandidate, longer: PlateCandidate) -> bool:
    """Whether `longer` is `short` with characters added at its ends, each read at >=
    KEEP_END_LETTER_PROB."""
    added = added_at_ends(short.text, longer.text, longer.char_confidences)
    return added is not None and min(added) >= KEEP_END_LETTER_PROB


def _without_leading_graphic(candidate: PlateCandidate) -> PlateCandidate:
    if not leading_graphic(candidate.text):
        return candidate
    confidences = candidate.char_confidences[1:]
    return replace(
        candidate,
        text=candidate.text[1:],
        char_confidences=confidences,
        confidence=math.prod(confidences),
        char_alternatives=candidate.char_alternatives[1:],
    )
