"""The recogniser's input and output: crops to the model's tensor, and the CTC output
decoded (greedy path, per-character probabilities and plate-character alternatives)."""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from recognizers.base import Alternatives

__all__ = [
    "ctc_alternatives", "ctc_emissions", "ctc_greedy", "decode_path", "load_charset",
    "rec_tensor", "rec_width",
]

REC_H = 48
REC_MAX_W = 320  # the width the model was trained at; wider crops are squeezed

# Each character's likeliest plate characters (A-Z, 0-9) are kept as its alternatives,
# up to this many and down to this probability: fitting a read to a serial format
# (recognizers/serial_formats.py) chooses among them.
ALTERNATIVES = 3
MIN_ALTERNATIVE_P = 0.01
PLATE_CHARS = frozenset(string.ascii_uppercase + string.digits)


def load_charset(session: ort.InferenceSession) -> list[str]:
    """Index -> character of the CTC output, as PaddleOCR's CTCLabelDecode builds it.

    Index 0 is the CTC blank, then the model's "character" metadata list (one per line),
    then a space PaddleOCR appends (use_space_char). Checked against the output width.
    """
    meta = session.get_modelmeta().custom_metadata_map
    if "character" not in meta:
        raise ValueError("recognition model has no 'character' metadata")
    chars = ["<blank>", *meta["character"].split("\n"), " "]
    width = session.get_outputs()[0].shape[-1]
    if isinstance(width, int) and width != len(chars):
        raise ValueError(f"charset has {len(chars)} entries but the model outputs {width}")
    return chars


def rec_width(crop: NDArray[np.uint8]) -> int:
    """Width of a crop at the recogniser's height, aspect kept, at most REC_MAX_W."""
    return min(REC_MAX_W, math.ceil(REC_H * crop.shape[1] / max(1, crop.shape[0])))


def rec_tensor(crops: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """BGR crops as the recognition model takes them: height 48, width by aspect, scaled
    to -1..1, padded with 0 (mid grey) to the widest, a multiple of 8 (at least 32).
    Training (recognizers/training) feeds the model through this too."""
    width = max(32, -(-max(rec_width(c) for c in crops) // 8) * 8)
    batch = np.zeros((len(crops), 3, REC_H, width), np.float32)
    for i, crop in enumerate(crops):
        rw = rec_width(crop)
        resized = cv2.resize(crop, (rw, REC_H), interpolation=cv2.INTER_LINEAR)
        batch[i, :, :, :rw] = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
    return batch


def ctc_emissions(probs: NDArray[np.float32]) -> list[tuple[int, int, int]]:
    """Greedy CTC path: (charset index, first step, last step) of each character it
    emits, merging repeated steps and dropping blanks (index 0)."""
    out: list[tuple[int, int, int]] = []
    prev = -1
    for step, idx in enumerate(probs.argmax(axis=1).tolist()):
        if idx != 0 and idx == prev:
            out[-1] = (idx, out[-1][1], step)
        elif idx != 0:
            out.append((idx, step, step))
        prev = idx
    return out


def ctc_greedy(probs: NDArray[np.float32], charset: Sequence[str]) -> tuple[str, tuple[float, ...]]:
    """Greedy CTC: merge repeated steps, drop blanks; a character's probability is the
    highest softmax over the steps that emitted it."""
    return decode_path(probs, ctc_emissions(probs), charset)


def ctc_alternatives(
    probs: NDArray[np.float32],
    emitted: Sequence[tuple[int, int, int]],
    columns: NDArray[np.intp],
    chars: Sequence[str],
) -> Alternatives:
    """Per emitted character: the likeliest of `chars` (the charset entries at
    `columns`) over the steps that emitted it, each at its highest softmax there."""
    if not emitted:
        return ()
    sub = probs[:, columns]
    out = []
    for _, a, b in emitted:
        seg = sub[a : b + 1].max(axis=0)
        top = np.argsort(-seg)[:ALTERNATIVES]
        out.append(tuple((chars[i], float(seg[i])) for i in top if seg[i] >= MIN_ALTERNATIVE_P))
    return tuple(out)


def decode_path(
    probs: NDArray[np.float32], emitted: Sequence[tuple[int, int, int]], charset: Sequence[str]
) -> tuple[str, tuple[float, ...]]:
    """ctc_greedy's text and probabilities from an already computed CTC path."""
    best_p = probs.max(axis=1)
    text = "".join(charset[idx] for idx, _, _ in emitted)
    conf = tuple(
        float(min(1.0, max(0.0, best_p[a : b + 1].max()))) for _, a, b in emitted
    )
    return text, conf
