"""Plate recognisers: a frame in, plate candidates out (see recognizers.base.Recognizer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recognizers.base import PlateCandidate, Recognizer

if TYPE_CHECKING:
    from kernel.settings import Settings

__all__ = ["BACKENDS", "PlateCandidate", "Recognizer", "load_recognizer"]

BACKENDS: tuple[str, ...] = ("ppocr-onnx", "paddleocr")


def load_recognizer(settings: Settings | None = None, backend: str | None = None) -> Recognizer:
    """A recogniser configured from settings: the backend (`recognizer_backend`, or
    `backend` if given) and its models and options.

    `settings=None` uses kernel.settings.get_settings(). Loading takes ~1 s (two ONNX
    sessions): load once per worker, not per frame.
    """
    if settings is None:
        from kernel.settings import get_settings

        settings = get_settings()
    backend = backend or settings.recognizer_backend
    if backend not in BACKENDS:
        known = ", ".join(BACKENDS)
        raise ValueError(f"unknown recognizer backend {backend!r}; available: {known}")
    if backend == "paddleocr":
        from recognizers.paddle import PaddleOCRRecognizer

        if settings.paddle_det_model_dir is None or settings.paddle_rec_model_dir is None:
            raise ValueError(
                "the paddleocr backend needs ALPR_PADDLE_DET_MODEL_DIR and "
                "ALPR_PADDLE_REC_MODEL_DIR (local model folders; nothing is downloaded)"
            )
        return PaddleOCRRecognizer(
            settings.paddle_det_model_dir,
            settings.paddle_rec_model_dir,
            det_model_name=settings.paddle_det_model_name,
            rec_model_name=settings.paddle_rec_model_name,
            device=settings.paddle_device,
        )

    # Imported here so `import recognizers` (e.g. for PlateCandidate) stays light.
    from recognizers.ppocr_onnx import (
        DET_MODEL_NAME,
        DET_SOURCE_MODEL_NAME,
        REC_MODEL_NAME,
        TEXT_REC_MODEL_NAME,
        PPOCRRecognizer,
        default_model_path,
    )

    if settings.rec_model is not None and not settings.rec_model.is_file():
        raise FileNotFoundError(
            f"recognition model not found: {settings.rec_model} (ALPR_REC_MODEL)")
    try:
        det_model = default_model_path(DET_MODEL_NAME, settings.model_dir)
    except FileNotFoundError:
        # A model folder set up before the folded detector shipped holds the export:
        # same output, ~15% slower detection (tools/graph_folding.py makes the other).
        det_model = default_model_path(DET_SOURCE_MODEL_NAME, settings.model_dir)
    try:
        rec_model = settings.rec_model or default_model_path(REC_MODEL_NAME, settings.model_dir)
    except FileNotFoundError:
        # A model folder set up before the plate reader shipped holds the general one.
        rec_model = default_model_path(TEXT_REC_MODEL_NAME, settings.model_dir)
    text_rec_model = None
    if settings.read_state:
        try:
            text_rec_model = default_model_path(TEXT_REC_MODEL_NAME, settings.model_dir)
        except FileNotFoundError:
            text_rec_model = None  # a folder without it: states from the plate reader's reads
        if text_rec_model == rec_model:
            text_rec_model = None  # the general recogniser reads everything already
    return PPOCRRecognizer(
        det_model=det_model,
        rec_model=rec_model,
        text_rec_model=text_rec_model,
        det_max_side=settings.det_max_side,
        threads=settings.ort_threads,
        det_runtime=settings.det_runtime,
        det_precision=settings.det_precision,
    )
