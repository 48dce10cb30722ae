"""Optional backend: PaddleOCR's own pipeline (the `paddleocr` package), for sites that
have its models on disk (e.g. GPU sites running the server-size PP-OCR models).

Same interface as the ONNX backend: a frame in, plate candidates out, chosen by the same
plate rules (recognizers.plate_text). Models load from explicit local folders only:
PaddleOCR would otherwise download them, which air-gapped sites cannot, so a missing
folder is an error here rather than a download there. Install with
`pip install 'alpr-hotlist[paddle]'` plus the PaddlePaddle build for the site's hardware.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recognizers.base import Box, PlateCandidate
from recognizers.plate_text import TextRead, choose_candidates

__all__ = ["BackendUnavailableError", "PaddleOCRRecognizer"]


class BackendUnavailableError(RuntimeError):
    """The backend's package is not installed."""


class PaddleOCRRecognizer:
    """PaddleOCR det + rec from local model folders; document-layout steps switched off
    (plates are single upright lines)."""

    def __init__(
        self,
        det_model_dir: Path,
        rec_model_dir: Path,
        *,
        det_model_name: str | None = None,
        rec_model_name: str | None = None,
        device: str = "cpu",
    ) -> None:
        for what, folder in (("detection", det_model_dir), ("recognition", rec_model_dir)):
            if not Path(folder).is_dir():
                raise FileNotFoundError(f"PaddleOCR {what} model folder not found: {folder}")
        # Never probe model hosting sites: the models are local.
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        try:
            from paddleocr import PaddleOCR
        except ImportError as exc:
            raise BackendUnavailableError(
                "the paddleocr backend needs the paddleocr package: "
                "pip install 'alpr-hotlist[paddle]' and a PaddlePaddle build"
            ) from exc
        options: dict[str, Any] = {
            "text_detection_model_dir": str(det_model_dir),
            "text_recognition_model_dir": str(rec_model_dir),
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": False,
            "device": device,
        }
        if det_model_name:
            options["text_detection_model_name"] = det_model_name
        if rec_model_name:
            options["text_recognition_model_name"] = rec_model_name
        self._ocr = PaddleOCR(**options)

    def read_regions(self, image: NDArray[np.uint8]) -> list[TextRead]:
        """Every text line PaddleOCR finds, as TextRead (box = the line's bounds)."""
        if image.ndim != 3 or image.shape[0] < 4 or image.shape[1] < 4:
            return []
        return regions_from_result(self._ocr.predict(image), image.shape)

    def read(
        self, image: NDArray[np.uint8], regions: Sequence[Box] | None = None
    ) -> list[PlateCandidate]:
        """Plate candidates, best first. PaddleOCR always reads the whole frame:
        `regions` is accepted for the interface and not used."""
        return choose_candidates(self.read_regions(image))


def regions_from_result(results: Any, shape: tuple[int, ...]) -> list[TextRead]:
    """PaddleOCR 3 predict() output -> TextRead per line.

    PaddleOCR gives one score per line, not per character: each character gets
    score ** (1 / length), so the plate confidence (their product) is the line's score.
    """
    reads = []
    for result in results:
        for text, score, poly in zip(
            result["rec_texts"], result["rec_scores"], result["rec_polys"], strict=True
        ):
            if not text:
                continue
            points = np.asarray(poly, np.float32).reshape(-1, 2)
            x0, y0 = np.floor(points.min(axis=0)).astype(int)
            x1, y1 = np.ceil(points.max(axis=0)).astype(int)
            x0, y0 = max(0, int(x0)), max(0, int(y0))
            x1, y1 = min(shape[1], int(x1)), min(shape[0], int(y1))
            per_char = float(score) ** (1 / len(text)) if score > 0 else 0.0
            reads.append(TextRead(text, (per_char,) * len(text), (x0, y0, x1 - x0, y1 - y0)))
    return reads
