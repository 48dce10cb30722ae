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
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, get_args

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from alpr.config import DetRuntime

__all__ = ["DET_RUNTIMES", "DetRuntime", "TextDetector", "load_det_runtime", "ort_session"]

DET_RUNTIMES: tuple[str, ...] = get_args(DetRuntime)


class TextDetector(Protocol):
    """An NCHW float tensor in, the model's first output (the text probability map) out."""

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
    def __init__(self, path: Path, threads: int) -> None:
        self._session = ort_session(path, threads)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._session.run(None, {self._input: tensor})[0]


class _OpenVinoDetector:
    def __init__(self, path: Path, threads: int) -> None:
        import openvino as ov  # imported here: only this runtime needs it

        core = ov.Core()
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # One flow process per core: pinning would put every process's thread on
            # the same core (each sees the whole machine).
            "ENABLE_CPU_PINNING": False,
        }
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self._request = compiled.create_infer_request()

    def __call__(self, tensor: NDArray[np.float32]) -> NDArray[np.float32]:
        # The request owns its output buffer and reuses it on the next call: copy.
        return np.array(self._request.infer([tensor])[0], copy=True)


def load_det_runtime(path: Path, runtime: DetRuntime, threads: int) -> TextDetector:
    """The detector model at `path`, compiled for `runtime` on `threads` CPU threads."""
    if runtime == "openvino":
        return _OpenVinoDetector(path, threads)
    if runtime == "onnxruntime":
        return _OrtDetector(path, threads)
    raise ValueError(f"unknown detector runtime {runtime!r}; available: {', '.join(DET_RUNTIMES)}")
