"""Which of a frame's candidates is the plate, and how likely its read is exactly right.

The recogniser finds every plate-like text line of a frame (the serial, but also a
sign's phone number, a road sign, a dealer frame, a state name read as letters and
digits); `plate_text.plate_score` ranks them by hand-set factors, and each read's
confidence is the product of its characters' softmax, which is over-sure (reads at
0.99-1.00 were 87% right on held-out US crops). This module learns one logistic model
from real photos (`python -m recognizers.training.scorer`): P(the candidate's text is
exactly the plate), from its confidences, its characters' margins over their runner-up,
its length and letter/digit mix, its box's shape and size beside the other candidates,
the recogniser's own ranking, and the state read around it. recognizers/frame_reader.py
ranks a frame's candidates by that probability (ALPR_CANDIDATE_SCORER) and can publish
it as the read's confidence (ALPR_SCORER_CONFIDENCE, off: benchmarks/RESULTS.md says why;
`benchmarks.accuracy` prints the reliability curve).

The model is a JSON file of feature names, standardisation and weights
(`recognizers/models/plate_scorer.json`): no runtime dependency, ~20 us per candidate.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from recognizers.base import PlateCandidate

__all__ = [
    "FEATURES",
    "SCORER_NAME",
    "CandidateScorer",
    "candidate_features",
    "default_scorer_path",
    "load_scorer",
    "with_confidence",
]

SCORER_NAME = "plate_scorer.json"

# Characters a plate reader confuses with another (0/O/D/Q, 1/I, 8/B): a read that starts
# with one was the commonest sure-but-wrong read on held-out US crops (ICD3503, 0QK466).
_LOOKALIKE = frozenset("0O1IDQ8B")
_LEADING_LOOKALIKE = frozenset("0O1IDQ")

FEATURES: tuple[str, ...] = (
    "log_confidence", "min_char", "mean_log_char", "min_margin",
    "length_5_to_8", "length_4", "length_3_or_less", "length",
    "digit_share", "mixed", "letters_only", "digits_only", "transitions",
    "log_aspect", "aspect_1_3_to_6", "height_of_tallest",
    "ranked_first", "rank", "log_candidates", "extends_other", "inside_other",
    "has_state", "state_confidence", "raw_separators", "raw_lower_case",
    "leading_lookalike", "first_char", "lookalike_share", "last_char",
)


def candidate_features(
    candidate: PlateCandidate, candidates: Sequence[PlateCandidate], rank: int
) -> list[float]:
    """FEATURES of `candidate`, the `rank`-th of a frame's `candidates` (as the
    recogniser ordered them).

    Nothing relative to the image (a box's share of its width, its place): the real
    plates learned from are mostly tight crops, where the plate fills the image, and such
    features learned "crop or scene" instead of "plate or not"."""
    text, chars = candidate.text, candidate.char_confidences or (0.0,)
    n = len(text)
    _, _, w, h = candidate.box
    tallest = max(c.box[3] for c in candidates)
    margins = []
    for alternatives in candidate.char_alternatives:
        probs = [*sorted((p for _, p in alternatives), reverse=True), 0.0, 0.0]
        margins.append(probs[0] - probs[1])
    digits = sum(ch.isdigit() for ch in text)
    others = [c.text for c in candidates if c is not candidate]
    raw = candidate.raw_text or text
    return [
        math.log(max(candidate.confidence, 1e-4)),
        min(chars),
        sum(math.log(max(p, 1e-4)) for p in chars) / max(1, n),
        min(margins) if margins else 0.0,
        float(5 <= n <= 8), float(n == 4), float(n <= 3), n / 8,
        digits / max(1, n), float(0 < digits < n), float(digits == 0), float(digits == n),
        sum(a.isdigit() != b.isdigit() for a, b in itertools.pairwise(text)) / 4,
        math.log(max(w, 1) / max(h, 1)), float(1.3 <= w / max(h, 1) <= 6),
        h / max(1, tallest),
        float(rank == 0), min(rank, 5) / 5, math.log(len(candidates)),
        float(any(o and o != text and o in text for o in others)),
        float(any(o != text and text in o for o in others)),
        float(bool(candidate.state)), candidate.state_confidence,
        sum(not ch.isalnum() for ch in raw) / max(1, len(raw)),
        sum(ch.islower() for ch in raw) / max(1, len(raw)),
        float(text[:1] in _LEADING_LOOKALIKE), chars[0],
        sum(ch in _LOOKALIKE for ch in text) / max(1, n), chars[-1],
    ]


@dataclass(frozen=True)
class CandidateScorer:
    """A logistic model over FEATURES: standardised, then weights and a bias."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if not len(self.mean) == len(self.scale) == len(self.weights) == len(FEATURES):
            raise ValueError(f"a scorer needs {len(FEATURES)} means, scales and weights")

    def probabilities(self, candidates: Sequence[PlateCandidate]) -> list[float]:
        """P(exactly right) of each of a frame's candidates, in their order."""
        if not candidates:
            return []
        x = np.array([candidate_features(c, candidates, k)
                      for k, c in enumerate(candidates)])
        z = (x - np.array(self.mean)) / np.array(self.scale) @ np.array(self.weights) + self.bias
        return [float(p) for p in 1.0 / (1.0 + np.exp(-z))]

    def to_json(self) -> dict[str, object]:
        return {"features": list(FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias}


def with_confidence(candidate: PlateCandidate, probability: float) -> PlateCandidate:
    """`candidate` with `probability` as its confidence. Its characters' confidences are
    scaled by one common factor so that they still multiply to it (a pass votes with
    them, flows/passes.py) and keep their order (the least sure stays the least sure)."""
    chars = candidate.char_confidences
    if not chars:
        return replace(candidate, confidence=probability)
    raw = math.prod(chars)
    if raw > 0:
        factor = (probability / raw) ** (1 / len(chars))
        scaled = tuple(min(1.0, c * factor) for c in chars)
    else:  # nothing to scale: every character gets an equal share
        scaled = (probability ** (1 / len(chars)),) * len(chars)
    return replace(candidate, confidence=probability, char_confidences=scaled)


@functools.cache
def default_scorer_path() -> Path:
    """The scorer shipped in recognizers/models/ (resolved once: every frame asks)."""
    return Path(str(importlib.resources.files("recognizers") / "models" / SCORER_NAME))


@functools.cache
def load_scorer(path: Path) -> CandidateScorer:
    """The scorer saved at `path` (cached: one read per process). A file written for
    other features is an error naming it, not a silent mismatch."""
    data = json.loads(Path(path).read_text())
    if data.get("features") != list(FEATURES):
        raise ValueError(f"{path}: written for other features than this version's; "
                         "retrain it (python -m recognizers.training.scorer)")
    return CandidateScorer(tuple(data["mean"]), tuple(data["scale"]),
                           tuple(data["weights"]), float(data["bias"]))
