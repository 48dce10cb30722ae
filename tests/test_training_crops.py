"""The fine-tuning data generator (recognizers/training/synth_crops.py), with the fonts the
project ships: labels are plate characters only, crops are small like road-camera plates,
and a seed gives the same crops again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim
from recognizers.training.synth_crops import SyntheticCrops

FONTS = sorted((Path(sim.__file__).parent / "fonts").glob("*.woff"))


def test_crops_and_labels() -> None:
    gen = SyntheticCrops(FONTS, seed=3)
    samples = [gen.sample() for _ in range(60)]
    for s in samples:
        assert (s.label and s.label.isascii() and s.label.isalnum() and s.label.isupper()) or \
            s.label.isdigit()
        assert "O" not in s.label and "Q" not in s.label  # read as 0 on plates
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.image.shape[2] == 3
        assert s.image.shape[1] >= 0.8 * s.image.shape[0]  # a text line (2 characters: squarish)
    heights = [s.image.shape[0] for s in samples]
    assert np.median(heights) < 30  # most plates on road cameras are small
    assert len({s.label for s in samples}) > 50  # not one plate over and over


def test_same_seed_same_crops() -> None:
    a = SyntheticCrops(FONTS, seed=7).sample()
    b = SyntheticCrops(FONTS, seed=7).sample()
    c = SyntheticCrops(FONTS, seed=8).sample()
    assert a.label == b.label and np.array_equal(a.image, b.image)
    assert a.label != c.label


def test_needs_a_font() -> None:
    with pytest.raises(ValueError, match="font"):
        SyntheticCrops([])
