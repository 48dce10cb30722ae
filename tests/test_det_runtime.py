"""The detector runs on OpenVINO (default) or onnxruntime and finds the same text.

Fed: synthetic camera frames (sim.scene, clean and severe, two plates
each) through the shipped detector on both runtimes. Must hold: the probability maps
agree but for text edges (OpenVINO may run bf16 on this CPU), the text masks differ in
at most 5% of their pixels, the reads of the whole recogniser are the same and their
boxes overlap (IoU >= 0.8: a few pixels of a text edge may flip, a different line may
not); an unknown runtime is refused by name, both by the loader and by the settings
(ALPR_DET_RUNTIME).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pydantic import ValidationError

from kernel.settings import Settings
from recognizers import det_runtime, load_recognizer
from recognizers.det_runtime import DET_RUNTIMES, faster_precision, load_det_runtime
from recognizers.ppocr_onnx import _DET_THRESH, DET_MODEL_NAME, default_model_path

# The same text line found by both runtimes: bf16 moves its edges by a few pixels.
MIN_BOX_IOU = 0.8


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="module")
def recognizers() -> dict[str, object]:
    return {rt: load_recognizer(Settings(det_runtime=rt)) for rt in DET_RUNTIMES}


def test_both_runtimes_give_the_same_probability_map(
    detector_frames: list[np.ndarray], recognizers: dict
) -> None:
    path = default_model_path(DET_MODEL_NAME)
    ov = load_det_runtime(path, "openvino", threads=1)
    ort = load_det_runtime(path, "onnxruntime", threads=1)
    prepare = recognizers["onnxruntime"]._det_prepare
    for image in detector_frames:
        tensor, _ = prepare(image, 960)
        want, got = ort(tensor), ov(tensor)
        assert got.shape == want.shape
        # bf16 keeps ~3 significant digits: the maps agree but for a few hundred pixels
        # on text edges (measured on real photos: up to 0.66 at single pixels, 1-3% of
        # the text mask flipped, none of it enough to change a read on average).
        assert float(np.abs(got - want).mean()) < 1e-3
        mask_want, mask_got = want > _DET_THRESH, got > _DET_THRESH
        assert mask_want.any(), "the frame should contain text to compare"
        assert int((mask_want != mask_got).sum()) <= 0.05 * int(mask_want.sum())


def test_both_runtimes_read_the_same_plates(
    detector_frames: list[np.ndarray], recognizers: dict
) -> None:
    for image in detector_frames:
        reads = {
            rt: [(c.text, c.box) for c in rec.read(image)] for rt, rec in recognizers.items()
        }
        assert reads["openvino"], "the synthetic plates should be read"
        texts = {rt: [t for t, _ in r] for rt, r in reads.items()}
        assert texts["openvino"] == texts["onnxruntime"]
        for (_, a), (_, b) in zip(reads["openvino"], reads["onnxruntime"], strict=True):
            assert box_iou(a, b) >= MIN_BOX_IOU, (a, b)


def test_an_unknown_runtime_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown detector runtime 'tensorrt'"):
        load_det_runtime(default_model_path(DET_MODEL_NAME), "tensorrt", threads=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="det_runtime"):
        Settings(det_runtime="tensorrt")


@pytest.mark.parametrize(
    ("ms", "chosen"),
    [
        ({"f32": 100.0, "bf16": 62.0}, "bf16"),  # AMD Zen 4: bf16 ~1.6x faster
        ({"f32": 100.0, "bf16": 95.0}, "f32"),  # a near tie: exact arithmetic, stable choice
        ({"f32": 100.0, "bf16": 125.0}, "f32"),  # Intel without AMX: bf16 slower
    ],
)
def test_bf16_is_kept_only_where_clearly_faster(ms: dict[str, float], chosen: str) -> None:
    assert faster_precision(ms) == chosen


def _cpu_has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_the_detector_reports_the_precision_it_runs_in() -> None:
    """Fed: the shipped detector loaded with each precision setting. Out: forced f32 runs
    f32; auto runs one of the two, and f32 where the CPU has no bf16; forced bf16 runs
    bf16 where the CPU has it and is refused by name where it does not; onnxruntime is
    f32. An unknown setting is refused by the settings."""
    path = default_model_path(DET_MODEL_NAME)
    assert load_det_runtime(path, "openvino", 1, "f32").precision == "f32"
    auto = load_det_runtime(path, "openvino", 1, "auto").precision
    assert auto in ({"f32", "bf16"} if _cpu_has_bf16() else {"f32"})
    if _cpu_has_bf16():
        assert load_det_runtime(path, "openvino", 1, "bf16").precision == "bf16"
    else:
        with pytest.raises(ValueError, match="no bfloat16"):
            load_det_runtime(path, "openvino", 1, "bf16")
    assert load_det_runtime(path, "onnxruntime", 1, "auto").precision == "f32"
    with pytest.raises(ValidationError, match="det_precision"):
        Settings(det_precision="fp8")


def test_auto_times_once_per_process_and_every_load_runs_its_choice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fed: the shipped detector loaded with "auto" three times in one process (as the
    workers of one flow process load it), with a fresh memory of earlier choices. Out:
    the timing (its log line) happens once, and every load runs the arithmetic it chose,
    so two workers of a process never read differently."""
    if not _cpu_has_bf16():
        pytest.skip("this CPU has no bf16: auto is f32 without timing anything")
    path = default_model_path(DET_MODEL_NAME)
    det_runtime._auto_choice.clear()
    with caplog.at_level(logging.INFO, logger="recognizers.det_runtime"):
        loads = [load_det_runtime(path, "openvino", 1, "auto") for _ in range(3)]
    timings = [r for r in caplog.records if r.getMessage().startswith("detector precision")]
    assert len(timings) == 1
    assert len({d.precision for d in loads}) == 1
