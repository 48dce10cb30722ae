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

from kernel.contracts import HotlistSource


def _check_sources(value: str) -> str:
    unknown = [n for n in _names(value) if n not in HotlistSource.__members__]
    if unknown:
        raise ValueError(f"unknown hotlist source(s) {', '.join(unknown)}; known: "
                         f"{', '.join(HotlistSource.__members__)}")
    return value


def _names(value: str) -> list[str]:
    return [n.strip().upper() for n in value.split(",") if n.strip()]


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

    frames: str = Field("alpr.frames", description="camera frames in (JPEG, key camera id)")
    reads: str = Field("alpr.reads", description="one read per vehicle pass (30-day retention)")
    alerts: str = Field("alpr.alerts", description="verification-required alerts")
    dead_letters: str = Field(
        "alpr.dead-letters", description="frames and records the flow refused, with why"
    )
    hotlist_updates: str = Field(
        "alpr.hotlist-updates", description="one event per hotlist change (historical hits)"
    )


class Settings(BaseSettings):
    """The flow's settings, and those the hotlist tools share with it. Each field's
    description is its line in docs/configuration.md (`python -m alpr.config_doc`)."""

    model_config = SettingsConfigDict(env_prefix="ALPR_")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding the hotlists")
    # The slowest legitimate reply is an import's pipelined batch of 5,000 entries, tens
    # of milliseconds of Redis time (a 1M-entry import takes ~20 s in 200 batches).
    redis_socket_timeout_s: float = Field(3.0, gt=0, description=(
        "seconds any Redis connect or reply may take, for every client (flow, `alpr` "
        "commands, hotlist import and watch, safeguards API); past it a hung Redis fails "
        "like a dead one (redis.TimeoutError, `kernel/redis_client.py`). The slowest "
        "legitimate reply (an import's batch of 5,000 entries) takes tens of milliseconds"))
    # Consumer group id only names the client; offsets live in bytewax recovery.
    kafka_client_id: str = Field("alpr-flow", description=(
        "the flow's Kafka client id (offsets live in bytewax recovery, not a group)"))
    tail: bool = Field(True, description=(
        "`false`: stop at the end of the frames topic instead of waiting for more "
        "(replays, tests)"))

    # Recovery: without it every restart re-reads the whole frames topic (a day of every
    # camera) and never catches up to live.
    recovery_dir: str = Field("~/.alpr/recovery", description=(
        "bytewax recovery folder of `alpr flow` (its state: each camera's open vehicle "
        "passes, parked hotlist joins and frames offsets), one sub-folder per frames "
        "topic, made on first start; every process of a cluster must see the same "
        "folder. A restart resumes from the last snapshot. Empty: no recovery (a "
        "restart starts `ALPR_START_LOOKBACK_S` back)"))
    snapshot_interval_s: float = Field(2.0, gt=0, description=(
        "seconds between recovery snapshots: a crash re-reads at most about this much "
        "of each camera's frames (their records marked `replayed`, with the same ids)"))
    start_lookback_s: float = Field(300.0, ge=0, description=(
        "with no saved state (first start, recovery off), the flow starts reading frames "
        "captured this many seconds ago (by Kafka timestamp), not at the topic's start "
        "(a day of frames would take weeks to catch up); 0: from the topic's start "
        "(replays, tests)"))
    hotlist_parked_max: int = Field(5000, ge=1, description=(
        "alertable reads whose hotlist join failed (Redis down) or met a vanished list "
        "kept in the flow's state and joined when Redis answers or the list is back; past "
        "this the oldest are dropped, counted (`alpr_hotlist_parked_dropped_total`) and "
        "logged. Reads are published either way"))
    hotlist_required_sources: Annotated[str, AfterValidator(_check_sources)] = Field(
        "", description=(
            "hotlist sources this site must have serving, comma-separated (e.g. "
            "`NCIC,NCMEC`): one with no entries in Redis is an outage from the flow's start "
            "(reads parked for it, `alpr_hotlist_source_missing`, critical rule "
            "`ALPRHotlistVanished`), even in a process that never saw it serve; empty: a "
            "source is an outage only once this process has seen it serve"))
    hotlist_retry_max_s: float = Field(5.0, gt=0, description=(
        "after a failed hotlist lookup the flow does not ask Redis again for 0.1 s, "
        "doubling up to this many seconds: reads go out meanwhile and their joins wait "
        "parked"))

    # A 1080p JPEG is ~0.3-1 MB.
    max_frame_bytes: int = Field(4 * 1024 * 1024, description=(
        "larger frames go to dead letters (a 1080p JPEG is ~0.3-1 MB)"))
    pass_gap_s: float = Field(2.0, gt=0, description=(
        "a vehicle pass closes after this many seconds without a read of its plate"))
    max_frames_per_pass: int = Field(12, ge=1, description=(
        "frames kept per pass for the vote (the best by confidence); bounds state"))
    max_open_passes: int = Field(32, ge=1, description=(
        "open passes per camera; the oldest is closed early past this (bounds state)"))
    alert_min_confidence: float = Field(0.80, ge=0, le=1, description=(
        "reads below this are published but never alert on their own"))
    read_state: bool = Field(True, description=(
        "read the issuing state printed around a plate (its name or a one-state slogan) "
        "with the general text recogniser (`PP-OCRv6_rec_small.onnx`, ~20 MB more per "
        "worker, a few ms on frames with a plate); off: from the plate reader's own reads, "
        "which name the state less often"))
    state_min_confidence: float = Field(0.90, ge=0, le=1, description=(
        "a read carries the issuing state read from its plate's text only this surely; "
        "hotlist matching never matches an entry of another state, so an unsure state "
        "must not block an alert"))
    standard_issue_serials: bool = Field(False, description=(
        "read I, O and Q as 1, 0, 0 where US standard-issue serials never use those "
        "letters (`recognizers/issuer_glyphs.py`). Off since the plate reader tells O "
        "from 0 itself: on the val splits the rules cost more reads than they fixed "
        "(US and Brazilian plates that print O, Q or I); hotlist matching treats "
        "look-alikes as equal either way"))
    min_candidate_confidence: float = Field(0.30, ge=0, le=1, description=(
        "per-frame candidates below this confidence are not worth a pass of their own "
        "(stickers, slogans, distant cars)"))
    max_candidates_per_frame: int = Field(3, ge=1, description=(
        "more candidates than this in one frame are not worth a pass of their own"))
    candidate_scorer: bool = Field(True, description=(
        "rank a frame's candidates by the learned scorer's probability that each is the "
        "plate read exactly (`recognizers/candidate_scorer.py`, `python -m "
        "recognizers.training.scorer`); off: by the hand-set plate score"))
    scorer_confidence: bool = Field(False, description=(
        "publish the scorer's probability as the read's confidence instead of the product "
        "of its characters' (look-alike classes') confidences. Off: on held-out photos it "
        "raised precision at the 0.80 alert threshold but cut the scene reads that reach it "
        "(benchmarks/RESULTS.md); a threshold for it needs more held-out scenes"))
    scorer_model: Path | None = Field(None, description=(
        "the candidate scorer's JSON file; empty: `recognizers/models/plate_scorer.json`"))
    lane_regions: Annotated[
        dict[str, tuple[float, float, float, float]], AfterValidator(_check_lane_regions)
    ] = Field(default_factory=dict, description=(
        'per camera, where plates pass: `{"cam-1": [x, y, w, h]}` as fractions of the '
        "frame; the recogniser sees only that part. Other cameras: the whole frame"))
    unchanged_frame_threshold: float = Field(1.5, ge=0, description=(
        "frames whose lane region changed less than this since the camera's last "
        "recognised frame (mean abs grey-level difference of 32x18 thumbnails; JPEG noise "
        "alone ~0.5) are skipped (`alpr_frames_skipped_total`); 0 reads every frame"))
    motion_regions: bool = Field(True, description=(
        "in a changed frame the detector looks only where it moved (thumbnail cells that "
        "changed, grown by 80 px at 720p; the whole frame when that is over 60% of it); "
        "text cut by a region's edge is detected again across the frame's width. Needs "
        "`ALPR_UNCHANGED_FRAME_THRESHOLD` > 0. Share looked at: `alpr_detected_frame_share`"))
    stretch_contrast_below: int = Field(160, ge=0, le=255, description=(
        "a frame whose grey levels (1st to 99th percentile) span fewer than this is "
        "stretched to 0-255 before it is read (fog, dusk, IR casts, dirty plates: the "
        "detector finds no text at low contrast; `recognizers/exposure.py`); frames "
        "spanning more are read as they are; 0: never"))
    dim_frame_read_unstretched: bool = Field(True, description=(
        "a stretched (dim) frame whose read comes within a character of the frame's side "
        "edge (a tight plate crop) is also read as it came, and a read there that extends "
        "the stretched read by end characters (each read at >= 0.5) replaces it: the "
        "stretch can fade an end character into the edge (`recognizers/frame_reader.py`); "
        "costs such frames a second read; false: the stretched read alone"))
    det_max_side: int = Field(960, ge=320, description=(
        "detector input: the long side is capped to this many pixels"))
    ort_threads: int = Field(1, ge=1, description=(
        "inference threads per worker (detector and recogniser): one worker per core is "
        "fastest"))
    det_runtime: DetRuntime = Field("openvino", description=(
        "where the text detector runs: `openvino` (see `ALPR_DET_PRECISION`) or "
        "`onnxruntime` (fp32). OpenVINO was faster and read more plates on every measure; "
        "the recogniser always runs on onnxruntime (`recognizers/det_runtime.py`)"))
    det_precision: DetPrecision = Field("auto", description=(
        "OpenVINO's arithmetic: `auto` times bf16 against f32 when the models load (~1 s) "
        "and keeps bf16 only if it is clearly faster (AMD Zen 4: ~1.6x; Intel with "
        "AVX512-BF16 but no AMX: slower than f32); `f32` or `bf16` forces one, e.g. for the "
        "same boxes on every restart. The choice is logged"))
    model_dir: Path | None = Field(None, description=(
        "folder with `ch_PP-OCRv4_det_folded.onnx` (made by `python -m tools.graph_folding`; "
        "a folder holding only the export `ch_PP-OCRv4_det_infer.onnx` still works, ~15% "
        "slower) and the plate reader `plate_rec.onnx` (a folder holding only the general "
        "`PP-OCRv6_rec_small.onnx` still works, reading plates less well); empty: the "
        "ones shipped in `recognizers/models/` and the `rapidocr` wheel"))
    rec_model: Path | None = Field(None, description=(
        "the recognition model file, overriding the one in `ALPR_MODEL_DIR` or shipped: "
        "e.g. the plate-trained reader `recognizers/models/plate_rec.onnx` "
        "(`python -m recognizers.training`, its MODEL_CARD.md)"))
    recognizer_backend: str = Field("ppocr-onnx", description=(
        "`ppocr-onnx` (the shipped models) or `paddleocr`: the optional PaddleOCR package "
        "(`pip install '.[paddle]'`) with its models in the local folders below"))
    paddle_det_model_dir: Path | None = Field(None, description=(
        "`paddleocr` backend: local folder of the detection model"))
    paddle_rec_model_dir: Path | None = Field(None, description=(
        "`paddleocr` backend: local folder of the recognition model"))
    paddle_det_model_name: str | None = Field(None, description=(
        "`paddleocr` backend: detection model name, e.g. PP-OCRv5_server_det"))
    paddle_rec_model_name: str | None = Field(None, description=(
        "`paddleocr` backend: recognition model name"))
    paddle_device: str = Field("cpu", description="`paddleocr` backend: `cpu` or e.g. `gpu:0`")

    metrics_port: int = Field(9108, description=(
        "Prometheus `/metrics` of a flow process (process i of `alpr flow --processes`: "
        "+ i); 0 disables"))
    # Read where matching runs (hotlists/match_policy.py reads the variable itself, so
    # a test can pass its own environment); declared here so it is documented with the rest.
    hotlist_match_policy: str = Field("", description=(
        "per-source overrides of the hotlist match policy, a JSON object, e.g. "
        '`{"LOCAL": {"max_extra": 1}, "NCIC": {"ocr_equivalence": false}}`; empty: the '
        "defaults of `hotlists/match_policy.py`. Invalid, it is refused when a hotlist store "
        "is made (flow, importers); after raising a max_extra, re-import the source"))
    topics: Topics = Field(default_factory=Topics, description="topic names: `ALPR_TOPIC_*`")

    def required_sources(self) -> frozenset[HotlistSource]:
        """`hotlist_required_sources` as sources."""
        return frozenset(HotlistSource(n) for n in _names(self.hotlist_required_sources))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
