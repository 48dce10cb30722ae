"""Fine-tune PP-OCRv6 small recognition on synthetic plate crops (CPU PyTorch).

    python -m recognizers.training.finetune --fonts-dir FONTS --out recognizers/models/...

The shipped ONNX model is converted to PyTorch (onnx2torch), trained with CTC on crops
from `synth_crops`, and exported back to ONNX with the same input, output (softmax over
the same 18,710 characters) and "character" metadata: the recogniser loads it exactly as
it loads the original. Batch-norm statistics stay frozen (the model keeps normalising
as it learned on real text); every weight is trained at a small learning rate, so the
model keeps what it knows of real photos and learns plate glyphs and layouts.

Training needs the `train` extra (torch, onnx) and onnx2torch without its dependencies
(it pulls a torchvision that does not load beside the CPU torch build); see README.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import types
from pathlib import Path

import numpy as np

from recognizers.plate_text import normalise
from recognizers.ppocr_onnx import REC_MODEL_NAME, ctc_greedy, default_model_path, rec_tensor
from recognizers.training.synth_crops import SyntheticCrops


def _import_onnx2torch():
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


def load_model(path: Path):
    """The ONNX model and its PyTorch twin. PaddlePaddle's export uses auto_pad
    SAME_UPPER on its 2x2 stride-1 convolutions and pool, which onnx2torch lacks: it is
    rewritten as the explicit padding it means (none before, one after)."""
    import onnx

    onnx2torch = _import_onnx2torch()
    model = onnx.load(str(path))
    for node in model.graph.node:
        for attr in list(node.attribute):
            if attr.name == "auto_pad" and attr.s == b"SAME_UPPER":
                kernel = next(
                    onnx.helper.get_attribute_value(a)
                    for a in node.attribute
                    if a.name == "kernel_shape"
                )
                strides = [
                    onnx.helper.get_attribute_value(a)
                    for a in node.attribute
                    if a.name == "strides"
                ] or [[1, 1]]
                if kernel != [2, 2] or strides[0] != [1, 1]:
                    raise ValueError(f"unexpected SAME_UPPER {node.op_type} {kernel} {strides}")
                node.attribute.remove(attr)
                node.attribute.append(onnx.helper.make_attribute("pads", [0, 0, 1, 1]))
    return model, onnx2torch.convert(model)


def trainable(model, charset_size: int, what: str) -> list:
    """Mark what to train and return it. onnx2torch keeps MatMul weights as buffers
    (`initializers.*`), so the classifier head (the (120, n_chars) weight and its bias)
    is turned into parameters here. `what`: "head" trains only that head (the features
    stay exactly as PaddleOCR trained them on real text); "all" also the convolutions."""
    import torch

    init = model.initializers
    for name, buf in list(init.named_buffers(recurse=False)):
        is_head = buf.ndim >= 1 and buf.shape[-1] == charset_size
        if is_head or (what == "all" and buf.is_floating_point() and buf.ndim >= 2):
            delattr(init, name)
            init.register_parameter(name, torch.nn.Parameter(buf.clone()))
    params = []
    for name, p in model.named_parameters():
        train = name.startswith("initializers.") and p.shape[-1] == charset_size
        p.requires_grad_(train or what == "all")
        if p.requires_grad:
            params.append(p)
    return params


def charset_of(model) -> list[str]:
    meta = {p.key: p.value for p in model.metadata_props}
    return ["<blank>", *meta["character"].split("\n"), " "]


def greedy(probs: np.ndarray, charset: list[str]) -> str:
    """The model's greedy read as plate text (A-Z0-9), as the recogniser decodes it."""
    return normalise(ctc_greedy(probs, charset)[0])


def batches(gen: SyntheticCrops, size: int, group: int = 4):
    """Endless batches of similar-width crops (little padding, as at run time)."""
    while True:
        samples = [gen.sample() for _ in range(size * group)]
        samples.sort(key=lambda s: s.image.shape[1] / s.image.shape[0])
        order = np.random.default_rng(len(samples)).permutation(group)
        for g in order:
            yield samples[g * size : (g + 1) * size]


def evaluate(torch_model, charset: list[str], samples) -> float:
    import torch

    right = 0
    with torch.no_grad():
        for s in samples:
            probs = torch_model(torch.from_numpy(rec_tensor([s.image])))[0].numpy()
            right += greedy(probs, charset) == s.label
    return right / len(samples)


def export(torch_model, source_model, out: Path) -> None:
    """ONNX with dynamic batch and width and the source model's metadata."""
    import onnx
    import torch

    dummy = torch.from_numpy(rec_tensor([np.zeros((48, 160, 3), np.uint8)]))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(
        torch_model,
        (dummy,),
        str(tmp),
        input_names=["x"],
        output_names=["softmax"],
        dynamic_axes={"x": {0: "batch", 3: "width"}, "softmax": {0: "batch", 1: "steps"}},
        opset_version=17,
        dynamo=False,
    )
    exported = onnx.load(str(tmp))
    del exported.metadata_props[:]
    for prop in source_model.metadata_props:
        exported.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(exported, str(out))
    tmp.unlink()


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fonts-dir", type=Path, required=True, help="folder of .ttf/.otf/.woff fonts")
    ap.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--train", choices=["head", "all"], default="head")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    fonts = sorted(
        p for p in args.fonts_dir.rglob("*") if p.suffix.lower() in {".ttf", ".otf", ".woff"}
    )
    if not fonts:
        raise SystemExit(f"no fonts in {args.fonts_dir}")
    # Held-out fonts measure generalisation to glyph shapes the model never trained on.
    held_out = fonts[:: max(2, len(fonts) // 4)]
    train_fonts = [f for f in fonts if f not in held_out]
    print(f"fonts: {len(train_fonts)} train, {len(held_out)} held out", flush=True)

    source, model = load_model(default_model_path(REC_MODEL_NAME))
    charset = charset_of(source)
    index = {c: i for i, c in enumerate(charset)}
    model.eval()  # frozen batch-norm statistics, no dropout
    seen_gen, new_gen = (
        SyntheticCrops(train_fonts, 10_000 + args.seed),
        SyntheticCrops(held_out, 20_000 + args.seed),
    )
    val_seen = [seen_gen.sample() for _ in range(300)]
    val_new = [new_gen.sample() for _ in range(300)]
    print(
        f"before: seen fonts {evaluate(model, charset, val_seen):.3f}, "
        f"held-out fonts {evaluate(model, charset, val_new):.3f}",
        flush=True,
    )

    params = trainable(model, len(charset), args.train)
    print(f"training {sum(p.numel() for p in params):,} weights ({args.train})", flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / args.steps))
    )
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    stream = batches(SyntheticCrops(train_fonts, args.seed), args.batch)
    t0, running = time.time(), 0.0
    best = -1.0
    for step in range(1, args.steps + 1):
        chunk = next(stream)
        x = torch.from_numpy(rec_tensor([s.image for s in chunk]))
        probs = model(x)  # (N, T, C) softmax
        log_probs = torch.log(probs.clamp_min(1e-9)).permute(1, 0, 2)
        targets = torch.tensor([index[c] for s in chunk for c in s.label], dtype=torch.long)
        target_lens = torch.tensor([len(s.label) for s in chunk], dtype=torch.long)
        input_lens = torch.full((len(chunk),), log_probs.shape[0], dtype=torch.long)
        loss = ctc(log_probs, targets, input_lens, target_lens)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * float(loss) if step > 1 else float(loss)
        if step % 50 == 0:
            print(f"step {step} loss {running:.3f} {time.time() - t0:.0f}s", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            seen, new = evaluate(model, charset, val_seen), evaluate(model, charset, val_new)
            print(f"eval step {step}: seen fonts {seen:.3f}, held-out fonts {new:.3f}", flush=True)
            export(model, source, args.out.with_name(f"{args.out.stem}.step{step}.onnx"))
            if new >= best:
                best = new
                export(model, source, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
