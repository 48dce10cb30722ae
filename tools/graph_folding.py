"""Fold the PP-OCR detector's exported graph into fewer, larger operations: same maths,
less CPU time.

    python -m tools.graph_folding SRC.onnx DST.onnx

The Paddle-to-ONNX export of PP-OCRv4 det (a PPLCNetV3 backbone) spells out what
PaddleOCR computes as separate element-wise passes over every feature map: each
convolution is followed by a learnable scale and shift (`Mul` by a scalar, `Add` a
scalar), each hard-swish is four ops (`Add 3`, `Clip 0..6`, `Mul`, `Div 6`), and each
activation is followed by another scalar scale and shift. onnxruntime fuses none of
these, and on one thread they cost about a third of the detector's time. Rewritten:

* conv -> x a -> + c          becomes one conv (weights x a, bias x a + c);
* the four hard-swish ops     become one `HardSwish` (opset 14), which onnxruntime fuses
                              into the convolution before it;
* x a -> + c -> 1x1 conv      becomes that conv (weights x a, bias + c x sum of weights),
  only where every consumer is an unpadded convolution: a padded one would see the
  shift inside but zeros at its border, so folding there would change the output.

Every rewrite is exact up to float rounding: the folded model's probability map differs
from the original's by under 1e-4, and thresholded at the detector's 0.3 the text masks
are identical (tests/test_graph_folding.py). The shipped folded model
(recognizers/models/, see its README) is this module's output for the shipped original.
Needs the `onnx` package (the `dev` and `train` extras), not needed at run time.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["fold_detector_graph"]

_OPSET = 14  # the first with HardSwish


def fold_detector_graph(src: Path, dst: Path) -> Counter[str]:
    """Write `src` with its scalar affine ops and hard-swish patterns folded to `dst`;
    returns how many of each rewrite were made."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    consts: dict[str, np.ndarray] = {
        init.name: numpy_helper.to_array(init) for init in graph.initializer
    }
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        else:
            nodes.append(node)
    folds = _Folder(nodes, consts, {o.name for o in graph.output})
    made = folds.run()

    used = {name for node in nodes for name in node.input}
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(
        numpy_helper.from_array(np.asarray(value), name)
        for name, value in consts.items()
        if name in used
    )
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, _OPSET)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return made


class _Folder:
    """The rewrites, applied one at a time until none applies (each changes the graph's
    consumer lists, so they are recomputed after every rewrite)."""

    def __init__(self, nodes: list[Any], consts: dict[str, np.ndarray], outputs: set[str]):
        self.nodes = nodes
        self.consts = consts
        self.outputs = outputs
        self.consumers: dict[str, list[Any]] = {}

    def run(self) -> Counter[str]:
        made: Counter[str] = Counter()
        while True:
            self.consumers = defaultdict(list)
            for node in self.nodes:
                for name in node.input:
                    self.consumers[name].append(node)
            for node in self.nodes:
                rewrite = (
                    self._conv_affine(node) or self._hard_swish(node) or self._affine_conv(node)
                )
                if rewrite:
                    made[rewrite] += 1
                    break
            else:
                return made

    # -------------------------------------------------------------- helpers

    def _scalar(self, name: str) -> float | None:
        value = self.consts.get(name)
        return float(value.ravel()[0]) if value is not None and value.size == 1 else None

    def _only_consumer(self, tensor: str, op_type: str) -> Any | None:
        """The single node reading `tensor` if it is an `op_type` (and `tensor` is not a
        graph output), else None."""
        readers = self.consumers.get(tensor, [])
        if len(readers) != 1 or tensor in self.outputs or readers[0].op_type != op_type:
            return None
        return readers[0]

    def _scalar_operand(self, node: Any) -> tuple[float, str] | None:
        """(scalar, other input) of a binary node with one scalar constant input."""
        for i, name in enumerate(node.input):
            value = self._scalar(name)
            other = node.input[1 - i]
            if value is not None and other not in self.consts:
                return value, other
        return None

    def _scale_shift(self, mul: Any) -> tuple[str, Any, float, float] | None:
        """(x, Add, a, c) if `mul` is x times scalar a and its only reader adds scalar c."""
        scale = self._scalar_operand(mul) if mul is not None and mul.op_type == "Mul" else None
        if scale is None:
            return None
        add = self._only_consumer(mul.output[0], "Add")
        shift = self._scalar_operand(add) if add is not None else None
        if shift is None:
            return None
        return scale[1], add, scale[0], shift[0]

    def _affine_after(self, tensor: str) -> tuple[Any, Any, float, float] | None:
        """(Mul, Add, a, c) if `tensor` feeds only `Mul` by scalar a, then `Add` scalar c."""
        mul = self._only_consumer(tensor, "Mul")
        affine = self._scale_shift(mul)
        if affine is None or affine[0] != tensor:
            return None
        _, add, a, c = affine
        return mul, add, a, c

    def _conv_params(self, conv: Any) -> tuple[np.ndarray, np.ndarray]:
        weights = self.consts[conv.input[1]]
        bias = (
            self.consts[conv.input[2]]
            if len(conv.input) > 2
            else np.zeros(weights.shape[0], np.float32)
        )
        return weights, bias

    def _set_conv_params(self, conv: Any, x: str, weights: np.ndarray, bias: np.ndarray) -> None:
        w_name, b_name = f"{conv.output[0]}__folded_w", f"{conv.output[0]}__folded_b"
        self.consts[w_name] = weights.astype(np.float32)
        self.consts[b_name] = bias.astype(np.float32)
        del conv.input[:]
        conv.input.extend([x, w_name, b_name])

    # -------------------------------------------------------------- rewrites

    def _conv_affine(self, conv: Any) -> str | None:
        """conv -> x a -> + c: one conv."""
        if conv.op_type != "Conv" or conv.input[1] not in self.consts:
            return None
        affine = self._affine_after(conv.output[0])
        if affine is None:
            return None
        mul, add, a, c = affine
        weights, bias = self._conv_params(conv)
        self._set_conv_params(conv, conv.input[0], weights * a, bias * a + c)
        conv.output[0] = add.output[0]
        self.nodes.remove(mul)
        self.nodes.remove(add)
        return "conv then scale and shift"

    def _hard_swish(self, add3: Any) -> str | None:
        """x * clip(x + 3, 0, 6) / 6: one HardSwish."""
        from onnx import helper

        operand = self._scalar_operand(add3) if add3.op_type == "Add" else None
        if operand is None or operand[0] != 3.0:
            return None
        x = operand[1]
        clip = self._only_consumer(add3.output[0], "Clip")
        if clip is None or len(clip.input) != 3:
            return None
        if self._scalar(clip.input[1]) != 0.0 or self._scalar(clip.input[2]) != 6.0:
            return None
        mul = self._only_consumer(clip.output[0], "Mul")
        if mul is None or set(mul.input) != {x, clip.output[0]}:
            return None
        div = self._only_consumer(mul.output[0], "Div")
        if div is None or div.input[0] != mul.output[0] or self._scalar(div.input[1]) != 6.0:
            return None
        at = self.nodes.index(add3)
        for node in (add3, clip, mul, div):
            self.nodes.remove(node)
        self.nodes.insert(at, helper.make_node("HardSwish", [x], [div.output[0]]))
        return "hard-swish"

    def _affine_conv(self, mul: Any) -> str | None:
        """x a -> + c read only by unpadded convs: those convs."""
        affine = self._scale_shift(mul)
        if affine is None:
            return None
        x, add, a, c = affine
        readers = self.consumers.get(add.output[0], [])
        if add.output[0] in self.outputs or not readers:
            return None
        if any(r.op_type != "Conv" or r.input[1] not in self.consts or _padded(r) for r in readers):
            return None
        for conv in readers:
            weights, bias = self._conv_params(conv)
            self._set_conv_params(conv, x, weights * a, bias + c * weights.sum(axis=(1, 2, 3)))
        self.nodes.remove(mul)
        self.nodes.remove(add)
        return "scale and shift then unpadded conv"


def _padded(conv: Any) -> bool:
    from onnx import helper

    for attribute in conv.attribute:
        if attribute.name == "pads":
            return any(helper.get_attribute_value(attribute))
        if attribute.name == "auto_pad":
            return helper.get_attribute_value(attribute) not in (b"NOTSET", b"VALID")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="the exported detector (.onnx)")
    parser.add_argument("dst", type=Path, help="where to write the folded model")
    args = parser.parse_args()
    made = fold_detector_graph(args.src, args.dst)
    for rewrite, count in made.items():
        print(f"{count:4d} x {rewrite}")


if __name__ == "__main__":
    main()
