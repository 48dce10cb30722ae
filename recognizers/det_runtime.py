"""Where the text detector runs: OpenVINO (default) or onnxruntime, same ONNX model.

The detector is the larger part of a frame's time. On CPUs with native bfloat16
arithmetic (AVX512-BF16 or AMX: AMD Zen 4 and later, Intel Sapphire Rapids and later)
OpenVINO runs its convolutions in bf16, about 1.6x faster than onnxruntime's fp32 on one
thread (960x544 input, AMD EPYC: ~55-70 against ~90-115 ms). bf16 moves the probability
map at text edges (up to ~0.6 at single pixels, 1-3% of a text mask flips), so a box can
shift by a pixel or two; over 180 real photos that changed three reads, none for the
worse (benchmarks/RESULTS.md). Elsewhere OpenVINO runs fp32, at about onnxruntime's
speed. The recogniser stays on onnxruntime: in bf16 it lost 4 US dev plates, and its
crop widths vary too much for OpenVINO's per-shape kernels to pay off.

OpenVINO's bindings crashed multi-worker flows until the workers' Python thread states
were kept (flows/worker_thread.py); since then it is also ahead in the flow: 2-process
throughput 15.9 against 13.7 frames/s, live alert latency p50 334 against 359 ms and p99
390 against 1,703 ms (benchmarks/RESULTS.md, stop 10). onnxruntime remains for sites
that want one runtime only.

bf16 is not faster everywhere. On an Intel Xeon with AVX512-BF16 but no AMX (2026-12-02)
OpenVINO's bf16 took 140-152 ms per 960x544 input where its f32 took 126 (onnxruntime
131). So with `det_precision="auto"` (the default) the detector is compiled both ways
when it first loads in a process, each timed on a blank input, and bf16 is kept only
if it is clearly faster (BF16_MARGIN); the choice is logged, kept in `precision` and
reused by later loads in the process. "f32" or "bf16"
forces one (every read the same across restarts).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Protocol, get_args

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from kernel.settings import DetPrecision, DetRuntime

__all__ = [
    "BF16_MARGIN",
    "DET_RUNTIMES",
    "DetPrecision",
    "DetRuntime",
    "TextDetector",
    "faster_precision",
    "load_det_runtime",
    "ort_session",
]

DET_RUNTIMES: tuple[str, ...] = get_args(DetRuntime)
# bf16 is kept only when it takes less than this share of f32's time: for a near tie,
# f32 (exact arithmetic, the same boxes as onnxruntime) and a choice that does not flip
# between restarts on timing noise.
BF16_MARGIN = 0.9
# The input timed when choosing: about a quarter of a frame at the default 960 px. The
# ratio is what counts (bf16/f32 here: 1.14 at 544x960, 1.25 at 288x512), and the
# smaller input keeps the extra start-up time to ~0.5 s.
_TIMING_SHAPE = (1, 3, 288, 512)
# Input shapes OpenVINO keeps compiled (its default, 5,000, kept every shape a frame's
# parts ever had: ~5 MB each, a flow's RSS grew without end). Random motion regions,
# parts padded to 96: 634 MB with 8 against 738 MB with the default after 800 frames,
# the same ms per frame; padded to 64, 2,000 frames meet 105 shapes and RSS stays at
# 822-823 MB from frame 400 (benchmarks/RESULTS.md "Soak").
SHAPE_CACHE = 8
_TIMED_RUNS = 3

log = logging.getLogger(__name__)

# "auto"'s choice per (model path, threads), once per process: the workers of one process
# then run the same arithmetic (and read alike), and a second load skips the timing.
_auto_choice: dict[tuple[str, int], str] = {}


def faster_precision(ms: dict[str, float]) -> str:
    """"bf16" if its time is under BF16_MARGIN x f32's, else "f32" (`ms`: best time of
    each)."""
    return "bf16" if ms["bf16"] < BF16_MARGIN * ms["f32"] else "f32"


class TextDetector(Protocol):
    """An NCHW float tensor in, the model's first output (the text probability map) out."""

    precision: str  # the arithmetic it runs in: "f32" or "bf16"

    def __call__(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]: ...


def ort_session(path: Path, threads: int) -> ort.InferenceSession:
    """An onnxruntime CPU session on `threads` intra-op threads, run sequentially."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena keeps freed tensor memory for the next run. Without it every run maps
    # its intermediate tensors afresh and the kernel zero-fills them: 16k page faults
    # and ~35 ms of system time per US dev frame, against +20 MB resident with it
    # (detector p50 125 -> 86-96 ms, benchmarks/RESULTS.md).
    opts.enable_cpu_mem_arena = True
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class _OrtDetector:
    precision = "f32"

    def __init__(self, path: Path, threads: int) -> None:
        self._session = ort_session(path, threads)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._session.run(None, {self._input: tensor})[0]


class _OpenVinoDetector:
    def __init__(self, path: Path, threads: int, precision: DetPrecision) -> None:
        import openvino as ov  # imported here: only this runtime needs it

        core = ov.Core()
        model = core.read_model(str(path))

        def compile_for(hint: str) -> Any:
            config = {
                "INFERENCE_NUM_THREADS": threads,
                "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
                # One flow process per core: pinning would put every process's thread on
                # the same core (each sees the whole machine).
                "ENABLE_CPU_PINNING": False,
                "INFERENCE_PRECISION_HINT": hint,
                "CPU_RUNTIME_CACHE_CAPACITY": SHAPE_CACHE,
            }
            return core.compile_model(model, "CPU", config).create_infer_request()

        has_bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if precision == "bf16" and not has_bf16:
            raise ValueError("det_precision bf16: this CPU has no bfloat16 arithmetic")
        key = (str(path), threads)
        if precision == "auto" and has_bf16 and key not in _auto_choice:
            requests = {hint: compile_for(hint) for hint in ("f32", "bf16")}
            ms = {hint: _best_ms(request) for hint, request in requests.items()}
            self.precision = _auto_choice[key] = faster_precision(ms)
            log.info(
                "detector precision %s (OpenVINO, best of %d runs: f32 %.0f ms, bf16 %.0f ms)",
                self.precision, _TIMED_RUNS, ms["f32"], ms["bf16"],
            )
            self._request = requests[self.precision]
        else:
            # Forced, or auto's earlier choice in this process (f32 on a CPU without bf16).
            self.precision = _auto_choice.get(key, "f32") if precision == "auto" else precision
            self._request = compile_for(self.precision)

    def __call__(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        # The request owns its output buffer and reuses it on the next call: copy.
        return np.array(self._request.infer([tensor])[0], copy=True)


def _best_ms(request: Any) -> float:
    """Best time of a few runs of an OpenVINO request on a blank input, after a warm-up."""
    blank = np.zeros(_TIMING_SHAPE, np.float32)
    request.infer([blank])
    times = []
    for _ in range(_TIMED_RUNS):
        start = time.perf_counter()
        request.infer([blank])
        times.append(1000 * (time.perf_counter() - start))
    return min(times)


def load_det_runtime(
    path: Path, runtime: DetRuntime, threads: int, precision: DetPrecision = "auto"
) -> TextDetector:
    """The detector model at `path`, compiled for `runtime` on `threads` CPU threads;
    `precision` is OpenVINO's arithmetic (onnxruntime always runs f32)."""
    if runtime == "openvino":
        return _OpenVinoDetector(path, threads, precision)
    if runtime == "onnxruntime":
        return _OrtDetector(path, threads)
    raise ValueError(f"unknown detector runtime {runtime!r}; available: {', '.join(DET_RUNTIMES)}")
