"""The shipped, graph-folded detector computes what the exported PP-OCRv4 detector does.

Fed: synthetic camera frames (sim.scene, clear and severe), through both
models on onnxruntime. Must hold: the probability maps agree within 1e-4 everywhere and
the text masks at the detector's threshold are identical, so every box, read and alert
is the same; the folded model really has fewer element-wise ops; and re-running the
folding on the shipped export reproduces the shipped folded file's graph.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from recognizers.ppocr_onnx import (
    _DET_THRESH,
    DET_MODEL_NAME,
    DET_SOURCE_MODEL_NAME,
    PPOCRRecognizer,
    default_model_path,
)
from sim.plate_render import random_plate
from sim.scene import Conditions, render_frame
from tools.graph_folding import fold_detector_graph

onnx = pytest.importorskip("onnx", reason="the onnx package (dev extra) reads model graphs")


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _op_counts(path: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def test_folded_detector_output_matches_the_export(detector_frames: list[np.ndarray]) -> None:
    source = _session(default_model_path(DET_SOURCE_MODEL_NAME))
    folded = _session(default_model_path(DET_MODEL_NAME))
    prepare = PPOCRRecognizer()._det_prepare
    for image in detector_frames:
        tensor, _ = prepare(image, 960)
        want = source.run(None, {source.get_inputs()[0].name: tensor})[0]
        got = folded.run(None, {folded.get_inputs()[0].name: tensor})[0]
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) < 1e-4
        assert np.array_equal(got > _DET_THRESH, want > _DET_THRESH)
        assert (want > _DET_THRESH).any(), "the frame should contain text to compare"


def test_folding_removes_the_elementwise_ops_and_reproduces_the_shipped_file(
    tmp_path: Path,
) -> None:
    source = default_model_path(DET_SOURCE_MODEL_NAME)
    rebuilt = tmp_path / "folded.onnx"
    made = fold_detector_graph(source, rebuilt)
    assert made["hard-swish"] > 0 and made["conv then scale and shift"] > 0

    before, after = _op_counts(source), _op_counts(rebuilt)
    assert after["Conv"] == before["Conv"]  # folding never adds or drops a convolution
    assert after["Clip"] == 0 and after["Div"] == 0
    assert after["Mul"] + after["Add"] < (before["Mul"] + before["Add"]) // 2

    shipped = onnx.load(str(default_model_path(DET_MODEL_NAME)))
    again = onnx.load(str(rebuilt))
    assert [n.op_type for n in again.graph.node] == [n.op_type for n in shipped.graph.node]
    assert rebuilt.read_bytes() == default_model_path(DET_MODEL_NAME).read_bytes()


def test_a_padded_convolution_keeps_its_shift(tmp_path: Path) -> None:
    """Fed a tiny graph x -> *2 -> +1 -> padded 3x3 conv: folding the +1 into the conv's
    bias would change the border (the padding is zeros, not ones), so it must stay."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")
    two = numpy_helper.from_array(np.array([2.0], np.float32), "two")
    one = numpy_helper.from_array(np.array([1.0], np.float32), "one")
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["scaled"]),
            helper.make_node("Add", ["scaled", "one"], ["shifted"]),
            helper.make_node("Conv", ["shifted", "w"], ["y"], pads=[1, 1, 1, 1]),
        ],
        "padded",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])],
        [weights, two, one],
    )
    src, dst = tmp_path / "padded.onnx", tmp_path / "folded.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(src))
    assert sum(fold_detector_graph(src, dst).values()) == 0
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    want = _session(src).run(None, {"x": x})[0]
    np.testing.assert_allclose(_session(dst).run(None, {"x": x})[0], want)


def test_a_model_folder_with_only_the_export_still_loads(tmp_path: Path) -> None:
    """Fed: ALPR_MODEL_DIR set up before the folded detector shipped (the export and the
    recogniser only). Must: load, using the export, and read a rendered plate as the
    default (folded) models do."""
    from kernel.settings import Settings
    from recognizers import load_recognizer
    from recognizers.ppocr_onnx import REC_MODEL_NAME

    for name in (DET_SOURCE_MODEL_NAME, REC_MODEL_NAME):
        (tmp_path / name).symlink_to(default_model_path(name))
    old_folder = load_recognizer(Settings(model_dir=tmp_path), "ppocr-onnx")
    shipped = load_recognizer(Settings(), "ppocr-onnx")
    rng = np.random.default_rng(11)
    image = np.asarray(render_frame([(random_plate(rng), 0.5, 0.6, 1.0)], rng, Conditions.clean()))
    want = [c.text for c in shipped.read(image)]
    assert want, "the rendered plate should be read"
    assert [c.text for c in old_folder.read(image)] == want
