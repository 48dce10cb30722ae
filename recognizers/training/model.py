"""The PP-OCR recogniser as a trainable PyTorch model, with a plate-only output.

The shipped PP-OCRv6 small recogniser outputs a softmax over 18,710 characters (Chinese,
Japanese, symbols ...). A plate holds A-Z and 0-9: `plate_head` keeps only those columns
of the classifier (and CTC's blank and PaddleOCR's trailing space), which removes 9 MB
of weights, most of the softmax's time, and every non-plate character the reader could
emit. The ONNX graph is converted to PyTorch (onnx2torch), trained, and exported back
with the same input and output names and a "character" metadata list, so
`recognizers.ppocr_onnx` loads it exactly as it loads the original.

Needs the `train` extra (torch, onnx) and onnx2torch installed without its dependencies
(its torchvision pin does not load beside the CPU torch build): see README.md.
"""

from __future__ import annotations

import string
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from recognizers.ctc import rec_tensor

PLATE_CHARS = string.ascii_uppercase + string.digits


def _import_onnx2torch() -> Any:
    """onnx2torch imports torchvision ops it needs only for detection models (NMS,
    RoIAlign); a stand-in module lets it load without torchvision."""
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        ops.roi_align = ops.nms = ops.batched_nms = None  # type: ignore[attr-defined]
        tv.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"] = tv
        sys.modules["torchvision.ops"] = ops
    import onnx2torch

    return onnx2torch


def _explicit_same_upper(model: Any) -> None:
    """PaddlePaddle's export uses auto_pad SAME_UPPER on its 2x2 stride-1 convolutions
    and pool, which onnx2torch lacks: rewritten as the padding it means (0 before, 1 after)."""
    import onnx

    for node in model.graph.node:
        for attr in list(node.attribute):
            if attr.name == "auto_pad" and attr.s == b"SAME_UPPER":
                kernel = next(onnx.helper.get_attribute_value(a)
                              for a in node.attribute if a.name == "kernel_shape")
                strides = [onnx.helper.get_attribute_value(a)
                           for a in node.attribute if a.name == "strides"] or [[1, 1]]
                if kernel != [2, 2] or strides[0] != [1, 1]:
                    raise ValueError(f"unexpected SAME_UPPER {node.op_type} {kernel} {strides}")
                node.attribute.remove(attr)
                node.attribute.append(onnx.helper.make_attribute("pads", [0, 0, 1, 1]))


def charset_of(model: Any) -> list[str]:
    """Output column -> character, as the recogniser builds it: blank, the metadata's
    characters, a trailing space."""
    meta = {p.key: p.value for p in model.metadata_props}
    return ["<blank>", *meta["character"].split("\n"), " "]


def plate_head(model: Any) -> Any:
    """The ONNX model with its classifier cut down to blank, A-Z, 0-9 and space.

    The classifier is the MatMul + Add right before the final Softmax; its weight's
    columns are the output characters. Raises if the graph is not shaped like that."""
    import onnx
    from onnx import numpy_helper

    charset = charset_of(model)
    keep = [0] + [charset.index(c) for c in PLATE_CHARS] + [len(charset) - 1]
    inits = {i.name: i for i in model.graph.initializer}
    sized = [name for name, init in inits.items()
             if init.dims and init.dims[-1] == len(charset)]
    if len(sized) != 2:
        raise ValueError(f"expected one classifier weight and bias, found {sized}")
    for name in sized:
        arr = numpy_helper.to_array(inits[name])
        inits[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr[..., keep]), name))
    for prop in model.metadata_props:
        if prop.key == "character":
            prop.value = "\n".join(PLATE_CHARS)
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        if dims and dims[-1].HasField("dim_value"):
            dims[-1].dim_value = len(keep)
    onnx.checker.check_model(model)
    return model


def load_trainable(path: Path, plate_only: bool = True) -> tuple[Any, Any]:
    """(ONNX model, its PyTorch twin) of the recogniser at `path`; with `plate_only` the
    classifier keeps only plate characters (`plate_head`), unless it already does."""
    import onnx

    onnx2torch = _import_onnx2torch()
    model = onnx.load(str(path))
    _explicit_same_upper(model)
    if plate_only and len(charset_of(model)) != len(PLATE_CHARS) + 2:
        model = plate_head(model)
    return model, onnx2torch.convert(model)


def trainable(torch_model: Any) -> list[Any]:
    """Every floating weight made trainable and returned. onnx2torch keeps MatMul
    weights (attention, classifier) as buffers: they become parameters here. Batch-norm
    statistics stay buffers (frozen: the model keeps normalising as it learned)."""
    import torch

    init = torch_model.initializers
    for name, buf in list(init.named_buffers(recurse=False)):
        # Weights and biases, not the graph's small float constants (scales, epsilons).
        if buf.is_floating_point() and buf.numel() > 16:
            delattr(init, name)
            init.register_parameter(name, torch.nn.Parameter(buf.clone()))
    params = list(torch_model.parameters())
    for p in params:
        p.requires_grad_(True)
    return params


def export(torch_model: Any, source_model: Any, out: Path) -> None:
    """ONNX with dynamic batch and width and the source model's metadata (its charset)."""
    import onnx
    import torch

    dummy = torch.from_numpy(rec_tensor([np.zeros((48, 160, 3), np.uint8)]))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(
        torch_model, (dummy,), str(tmp), input_names=["x"], output_names=["softmax"],
        dynamic_axes={"x": {0: "batch", 3: "width"}, "softmax": {0: "batch", 1: "steps"}},
        opset_version=17, dynamo=False,
    )
    exported = onnx.load(str(tmp))
    del exported.metadata_props[:]
    for prop in source_model.metadata_props:
        exported.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(exported, str(out))
    tmp.unlink()
