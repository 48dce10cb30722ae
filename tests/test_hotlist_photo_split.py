"""benchmarks.hotlists --photos --split: which photos the alert figures come from.

Fed: a labelled folder of twelve plates (label files only: choosing photos reads no
image). Must hold: `--split test` plants and reads only the plates of the plate reader's
test split, so an alert figure is never taken on plates it trained or chose on; without
a split every plate counts."""

from __future__ import annotations

from pathlib import Path

from benchmarks.hotlists import ground_truth
from recognizers.training.data import split_of

PLATES = ("KJX4821", "HLF2160", "ABC1234", "7TRR812", "BC5X489", "MW240", "INC8808",
          "DHB822", "4339C", "AG0R6T", "ZZZ9999", "QRS5678")


def test_a_split_keeps_only_that_splits_plates(tmp_path: Path) -> None:
    for i, plate in enumerate(PLATES):
        (tmp_path / f"p{i:02d}.txt").write_text(f"p{i:02d}.png\t0\t0\t100\t40\t{plate}\n")
        (tmp_path / f"p{i:02d}.png").write_bytes(b"")
    everything = ground_truth(tmp_path)
    assert sorted(everything.values()) == sorted(PLATES)
    for split in ("train", "val", "test"):
        kept = ground_truth(tmp_path, split=split)
        assert sorted(kept.values()) == sorted(p for p in PLATES if split_of(p) == split)
    # The twelve fall on more than one side, so the filter is seen to drop some.
    assert 0 < len(ground_truth(tmp_path, split="train")) < len(PLATES)
    assert len(ground_truth(tmp_path, split="test", limit=1)) <= 1
