"""Settings shared by the flow, the CLI and the deployment files.

Every setting is an environment variable `ALPR_<NAME>` (docker-compose.yml uses the same
names; tests check that they agree).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where the text detector runs (recognizers/det_runtime.py).
DetRuntime = Literal["openvino", "onnxruntime"]
# The arithmetic OpenVINO runs the detector in (recognizers/det_runtime.py).
DetPrecision = Literal["auto", "f32", "bf16"]


def _check_lane_regions(
    regions: dict[str, tuple[float, float, float, float]],
) -> dict[str, tuple[float, float, float, float]]:
    for camera, (x, y, w, h) in regions.items():
        if not (0 <= x < 1 and 0 <= y < 1 and w > 0 and h > 0 and x + w <= 1 and y + h <= 1):
            raise ValueError(
                f"lane region of {camera}: x, y, w, h must be fractions of the frame "
                f"(0 <= x, y; w, h > 0; x + w <= 1; y + h <= 1), got {(x, y, w, h)}"
            )
    return regions


class Topics(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALPR_TOPIC_")

    frames: str = "alpr.frames"
    reads: str = "alpr.reads"
    alerts: str = "alpr.alerts"
    dead_letters: str = "alpr.dead-letters"
    hotlist_updates: str = "alpr.hotlist-updates"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALPR_")

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Seconds any Redis connect or reply may take before the caller gets
    # redis.TimeoutError (alpr.redis_client): a hung Redis then fails like a dead one.
    # The slowest legitimate reply is an import's pipelined batch of 5,000 entries, tens
    # of milliseconds of Redis time (a 1M-entry import takes ~20 s in 200 batches).
    redis_socket_timeout_s: float = Field(3.0, gt=0)
    # Consumer group id only names the client; offsets live in bytewax recovery.
    kafka_client_id: str = "alpr-flow"
    # Stop at the end of the partitions instead of waiting for more (tests, replays).
    tail: bool = True

    # Frames larger than this go to dead letters: a 1080p JPEG is ~0.3-1 MB.
    max_frame_bytes: int = 4 * 1024 * 1024
    # A vehicle pass closes after this many seconds without a read of its plate.
    pass_gap_s: float = Field(2.0, gt=0)
    # Frames kept per pass for the vote (the best by confidence); bounds state.
    max_frames_per_pass: int = Field(12, ge=1)
    # Open passes per camera; the oldest is closed early past this (bounds state).
    max_open_passes: int = Field(32, ge=1)
    # Reads below this are published but never alert on their own.
    alert_min_confidence: float = Field(0.80, ge=0, le=1)
    # Read I, O and Q as 1, 0, 0: standard-issue US serials never use those letters.
    standard_issue_serials: bool = True
    # Per-frame candidates below this confidence, or more than this many per frame, are
    # not worth a pass of their own (stickers, slogans, distant cars).
    min_candidate_confidence: float = Field(0.30, ge=0, le=1)
    max_candidates_per_frame: int = Field(3, ge=1)
    # Per camera, the part of the frame where plates pass: x, y, w, h as fractions of the
    # frame, e.g. ALPR_LANE_REGIONS='{"cam-1": [0, 0.35, 1, 0.65]}'. Others: whole frame.
    lane_regions: Annotated[
        dict[str, tuple[float, float, float, float]], AfterValidator(_check_lane_regions)
    ] = Field(default_factory=dict)
    # Skip recognising a frame whose lane region changed by less than this since the
    # camera's last recognised frame (mean abs difference of 32x18 grey thumbnails, grey
    # levels; JPEG noise alone ~0.5). 0 recognises every frame.
    unchanged_frame_threshold: float = Field(1.5, ge=0)
    # In a changed frame, detect plates only where it moved (flows/frame_filter.py);
    # needs unchanged_frame_threshold > 0. Off: the detector always sees the whole view.
    motion_regions: bool = True
    # Detector input: the long side is capped to this many pixels.
    det_max_side: int = Field(960, ge=320)
    # Inference threads per worker (detector and recogniser): one worker per core is fastest.
    ort_threads: int = Field(1, ge=1)
    # Where the text detector runs: "openvino" (bf16 on CPUs that have it, else fp32) or
    # "onnxruntime" (fp32). OpenVINO was faster and read more plates on every measure
    # (recognizers/det_runtime.py).
    det_runtime: DetRuntime = "openvino"
    # OpenVINO's arithmetic: "auto" times bf16 against f32 when the recogniser loads and
    # keeps bf16 only where it is clearly faster (AMD Zen 4: ~1.6x; Intel CPUs with
    # AVX512-BF16 but no AMX: slower than f32).
    det_precision: DetPrecision = "auto"
    # Where the ONNX models live; empty means the ones shipped with the project and in the
    # rapidocr wheel.
    model_dir: Path | None = None
    # "ppocr-onnx" (default, shipped models) or "paddleocr" (the optional paddleocr
    # package with PaddleOCR's own models in the local folders below).
    recognizer_backend: str = "ppocr-onnx"
    paddle_det_model_dir: Path | None = None
    paddle_rec_model_dir: Path | None = None
    paddle_det_model_name: str | None = None  # e.g. PP-OCRv5_server_det
    paddle_rec_model_name: str | None = None
    paddle_device: str = "cpu"  # or gpu:0

    metrics_port: int = 9108  # 0 disables the /metrics endpoint
    topics: Topics = Field(default_factory=Topics)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
