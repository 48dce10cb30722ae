"""Synthetic plate-number crops for fine-tuning the recognition model.

Each sample looks like what the recogniser feeds the model at run time: the plate
number's text line cut out of a frame along the detector's box, so tight or a little
loose, sometimes with a sliver of the state name, slogan, border, bolts or a centre
graphic, then blurred, noised and JPEG-compressed as a road camera would. The label is
the plate's letters and digits only.

Fonts are TrueType/WOFF files given by the caller (retraining fetches open fonts, see
recognizers/training/README.md); nothing here touches the network.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CropSample", "SyntheticCrops", "random_plate_text"]

# No O or Q: on plates they are the digit 0's glyph (or one with a tick that blur erases),
# US issuers skip them, and the recogniser reads them as 0 (recognizers/serials.py).
LETTERS = "ABCDEFGHIJKLMNPRSTUVWXYZ"
DIGITS = "0123456789"

# Serial patterns (L letter, D digit, space = printed gap) and how often to draw each.
# US standard issue, then EU-style; vanity plates are drawn separately.
_PATTERNS: tuple[tuple[str, float], ...] = (
    ("LLL DDDD", 0.14),
    ("D LLL DDD", 0.10),
    ("DDD LLL", 0.07),
    ("LLL DDD", 0.08),
    ("LL DDDDD", 0.04),
    ("LLL LDD", 0.03),
    ("DDD DDD", 0.03),
    ("D LL DDD", 0.03),
    ("DD LLL D", 0.02),
    ("LLL DDL", 0.02),
    ("DDDD LL", 0.02),
    ("L DDD LLL", 0.02),
    ("LL DDD LL", 0.06),
    ("LL DDDD LL", 0.04),
    ("L LL DDDD", 0.04),
    ("LL LL DDDD", 0.04),
    ("DLL DDDD", 0.03),
    ("LL DDDD", 0.04),
    ("DDD LLLL", 0.02),
    ("LLLL DDD", 0.02),
)
_VANITY_P = 0.15
# Look-alike pairs the model confuses on real plates: drawn more often so it learns them.
_HARD_CHARS = "08B1I4LWNMH6G2Z5SDUVY"


def random_plate_text(rng: np.random.Generator) -> str:
    """A plate as printed: letters, digits and the gaps between groups."""
    if rng.random() < _VANITY_P:
        n = int(rng.integers(2, 8))
        pool = LETTERS + DIGITS
        return "".join(pool[int(rng.integers(len(pool)))] for _ in range(n))
    patterns = [p for p, _ in _PATTERNS]
    weights = np.array([w for _, w in _PATTERNS])
    pattern = patterns[int(rng.choice(len(patterns), p=weights / weights.sum()))]
    out = []
    for kind in pattern:
        if kind == " ":
            out.append(" ")
        elif rng.random() < 0.2:  # favour look-alikes of the right kind
            pool = [c for c in _HARD_CHARS if c.isdigit() == (kind == "D")]
            out.append(pool[int(rng.integers(len(pool)))])
        else:
            pool = LETTERS if kind == "L" else DIGITS
            out.append(pool[int(rng.integers(len(pool)))])
    return "".join(out)


@dataclass(frozen=True)
class CropSample:
    image: NDArray[np.uint8]  # BGR, any size (the trainer resizes to the model's height)
    label: str  # A-Z and 0-9 only


_BACKGROUNDS = (  # RGB plate colours, text colours that go with them
    ((245, 245, 240), [(20, 40, 110), (15, 15, 15), (125, 20, 35), (20, 95, 45)]),
    ((238, 196, 40), [(20, 20, 20), (20, 40, 110)]),
    ((170, 210, 236), [(20, 40, 105), (15, 15, 15)]),
    ((250, 250, 250), [(15, 15, 15)]),
    ((25, 30, 45), [(240, 240, 240), (240, 200, 60)]),
    ((200, 200, 196), [(15, 15, 15), (20, 40, 110)]),
)


class SyntheticCrops:
    """A seeded, endless source of plate-number crops drawn with the given fonts."""

    def __init__(self, fonts: Sequence[Path], seed: int = 0) -> None:
        if not fonts:
            raise ValueError("need at least one font file")
        self.fonts = [Path(f) for f in fonts]
        self.rng = np.random.default_rng(seed)
        self._font_cache: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}

    def _font(self, index: int, size: int) -> ImageFont.FreeTypeFont:
        key = (index, size)
        if key not in self._font_cache:
            self._font_cache[key] = ImageFont.truetype(str(self.fonts[index]), size)
        return self._font_cache[key]

    def sample(self) -> CropSample:
        rng = self.rng
        printed = random_plate_text(rng)
        label = "".join(c for c in printed if c.isalnum())
        bg, inks = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
        ink = inks[int(rng.integers(len(inks)))]
        font = self._font(int(rng.integers(len(self.fonts))), 96)

        line = self._draw_line(printed, font, bg, ink)
        plate = self._frame_line(line, bg, ink)
        crop = self._degrade(plate)
        return CropSample(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), label)

    def _draw_line(
        self, printed: str, font: ImageFont.FreeTypeFont, bg: tuple[int, ...], ink: tuple[int, ...]
    ) -> NDArray[np.uint8]:
        """The text line alone, cap height ~96 px, glyphs condensed and spaced per plate."""
        rng = self.rng
        cap_top, cap_bottom = font.getbbox("H")[1], font.getbbox("H")[3]
        cap = cap_bottom - cap_top
        spacing = rng.uniform(0.02, 0.18) * cap
        gap_kind = rng.choice(
            ["space", "dash", "none", "graphic", "dot", "sticker"],
            p=[0.35, 0.15, 0.2, 0.12, 0.05, 0.13],
        )
        glyphs: list[NDArray[np.uint8]] = []
        for c in printed:
            if c == " ":
                glyphs.append(self._gap(gap_kind, cap, font, bg, ink))
                continue
            x0, _, x1, _ = font.getbbox(c)
            w = max(1, x1 - x0)
            im = Image.new("L", (w + 4, cap + 8), 0)
            ImageDraw.Draw(im).text((2 - x0, 4 - cap_top), c, font=font, fill=255)
            glyphs.append(np.asarray(im))
        squeeze = rng.uniform(0.5, 1.05)  # US plate fonts are much narrower than text fonts
        parts = []
        for g in glyphs:
            w = max(1, round(g.shape[1] * squeeze))
            parts.append(cv2.resize(g, (w, cap + 8), interpolation=cv2.INTER_AREA))
            parts.append(np.zeros((cap + 8, max(1, round(spacing))), np.uint8))
        mask = np.concatenate(parts[:-1], axis=1).astype(np.float32) / 255.0
        if rng.random() < 0.3:  # embossed plates: a darker rim around each stroke
            rim = cv2.dilate(mask, np.ones((5, 5), np.uint8)) - mask
            mask = np.clip(mask + 0.35 * rim, 0, 1)
        out = np.empty((*mask.shape, 3), np.float32)
        for ch in range(3):
            out[..., ch] = bg[ch] * (1 - mask) + ink[ch] * mask
        return out.astype(np.uint8)

    def _gap(
        self,
        kind: str,
        cap: int,
        font: ImageFont.FreeTypeFont,
        bg: tuple[int, ...],
        ink: tuple[int, ...],
    ) -> NDArray[np.uint8]:
        """A glyph-mask for the gap between groups: blank, dash, dot or a small graphic."""
        rng = self.rng
        h = cap + 8
        if kind == "none":
            return np.zeros((h, 1), np.uint8)
        w = int(cap * rng.uniform(0.25, 0.6))
        im = np.zeros((h, w), np.uint8)
        if kind == "dash":
            y = h // 2
            t = max(3, cap // 10)
            cv2.rectangle(im, (w // 6, y - t), (w - w // 6, y + t), 255, -1)
        elif kind == "dot":
            cv2.circle(im, (w // 2, h // 2), max(3, cap // 12), 255, -1)
        elif kind == "sticker":  # a registration sticker between the groups (a solid block)
            w = int(cap * rng.uniform(0.3, 0.7))
            im = np.zeros((h, w), np.uint8)
            y0 = int(h * rng.uniform(0.2, 0.45))
            cv2.rectangle(
                im,
                (1, y0),
                (w - 2, y0 + int(h * rng.uniform(0.3, 0.5))),
                int(rng.integers(60, 200)),
                -1,
            )
        elif kind == "graphic":  # a state shape, heart, star or keystone between groups
            w = int(cap * rng.uniform(0.5, 0.9))
            im = np.zeros((h, w), np.uint8)
            pts = rng.uniform(
                [0.1 * w, 0.2 * h], [0.9 * w, 0.85 * h], size=(int(rng.integers(4, 8)), 2)
            )
            hull = cv2.convexHull(pts.astype(np.int32))
            cv2.fillPoly(im, [hull], int(rng.integers(90, 256)))
        return im

    def _frame_line(
        self, line: NDArray[np.uint8], bg: tuple[int, ...], ink: tuple[int, ...]
    ) -> NDArray[np.uint8]:
        """The line on a plate background, cut out as a detector box would: margins of
        0-30% of the height, sometimes a clipped end, a leading emblem, a border or a
        sliver of the state name above / slogan below."""
        rng = self.rng
        h, w = line.shape[:2]
        top = int(h * rng.uniform(0.0, 0.3))
        bottom = int(h * rng.uniform(0.0, 0.3))
        left = int(h * rng.uniform(-0.04, 0.45))
        right = int(h * rng.uniform(-0.04, 0.45))
        canvas_h, canvas_w = h + 2 * h, w + 2 * h
        canvas = np.empty((canvas_h, canvas_w, 3), np.uint8)
        canvas[:] = bg
        if rng.random() < 0.4:  # a gradient or scenery wash behind the text
            ramp = np.linspace(rng.uniform(-40, 10), rng.uniform(-10, 40), canvas_h)[:, None, None]
            canvas = np.clip(canvas.astype(np.float32) + ramp, 0, 255).astype(np.uint8)
        y0, x0 = h, h
        canvas[y0 : y0 + h, x0 : x0 + w] = self._blend(canvas[y0 : y0 + h, x0 : x0 + w], line, bg)
        small = max(8, int(h * rng.uniform(0.25, 0.45)))
        if rng.random() < 0.3:  # state name / slogan just above or below the number
            word = "".join(
                LETTERS[int(rng.integers(len(LETTERS)))] for _ in range(int(rng.integers(5, 12)))
            )
            y_word = (
                y0 - small - int(h * rng.uniform(0.02, 0.2))
                if rng.random() < 0.5
                else y0 + h + int(h * rng.uniform(0.02, 0.2))
            )
            cv2.putText(
                canvas,
                word,
                (x0 + int(rng.uniform(0, w * 0.3)), y_word + small),
                cv2.FONT_HERSHEY_SIMPLEX,
                small / 22,
                ink,
                max(1, small // 8),
                cv2.LINE_AA,
            )
        if rng.random() < 0.2:  # a leading emblem: EU band, state graphic
            ew = int(h * rng.uniform(0.4, 0.8))
            colour = (
                (0, 51, 153)
                if rng.random() < 0.5
                else tuple(int(c) for c in rng.integers(0, 256, 3))
            )
            cv2.rectangle(
                canvas,
                (x0 - ew - int(h * 0.15), y0 - h // 6),
                (x0 - int(h * 0.15), y0 + h + h // 6),
                colour,
                -1,
            )
        if rng.random() < 0.3:  # plate border
            t = max(2, h // 20)
            cv2.rectangle(
                canvas,
                (x0 - left - t, y0 - top - t),
                (x0 + w + right + t, y0 + h + bottom + t),
                ink,
                t,
            )
        if rng.random() < 0.15:  # bolt holes
            for bx in (x0 + int(w * 0.25), x0 + int(w * 0.75)):
                by = y0 - int(h * 0.2) if rng.random() < 0.5 else y0 + int(h * 1.15)
                cv2.circle(canvas, (bx, by), max(3, h // 12), (90, 90, 90), -1)
        crop = canvas[y0 - top : y0 + h + bottom, x0 - left : x0 + w + right]
        return np.ascontiguousarray(self._warp(crop))

    def _blend(
        self, under: NDArray[np.uint8], line: NDArray[np.uint8], bg: tuple[int, ...]
    ) -> NDArray[np.uint8]:
        """Paste the line's ink over `under` (keeping gradients behind the text)."""
        ink_amount = np.abs(line.astype(np.float32) - np.array(bg, np.float32)).max(
            axis=2, keepdims=True
        )
        alpha = np.clip(ink_amount / 60.0, 0, 1)
        return (under * (1 - alpha) + line * alpha).astype(np.uint8)

    def _warp(self, crop: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """A small rotation and shear: the detector's box never sits exactly square."""
        rng = self.rng
        h, w = crop.shape[:2]
        jitter = rng.uniform(-0.04, 0.04, size=(4, 2)) * np.array([h, h])
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        dst = (src + jitter).astype(np.float32)
        m = cv2.getPerspectiveTransform(src, dst)
        return cv2.warpPerspective(crop, m, (w, h), borderMode=cv2.BORDER_REPLICATE)

    def _degrade(self, img: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Camera effects: low resolution, blur, light, noise, grey IR, JPEG."""
        rng = self.rng
        h, w = img.shape[:2]
        # Crop height the detector hands over: most plates on road cameras are small.
        text_h = rng.uniform(10, 22) if rng.random() < 0.65 else rng.uniform(22, 48)
        scale = text_h / h
        small = cv2.resize(
            img, (max(4, round(w * scale)), max(4, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        f = small.astype(np.float32)
        if rng.random() < 0.3:  # motion blur along the road
            k = int(rng.integers(2, 5))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            f = cv2.filter2D(f, -1, kernel)
        if rng.random() < 0.5:
            f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.3, 1.2))
        contrast, brightness = rng.uniform(0.5, 1.2), rng.uniform(-60, 50)
        f = (f - 128) * contrast + 128 + brightness
        if rng.random() < 0.25:  # shadow or glare across part of the plate
            x = int(rng.integers(0, f.shape[1]))
            f[:, x:] *= rng.uniform(0.5, 1.4)
        if rng.random() < 0.25:  # infrared cameras: grey
            grey = f.mean(axis=2, keepdims=True)
            f = np.repeat(grey, 3, axis=2)
        f += rng.normal(0, rng.uniform(0, 10), f.shape)
        out = np.clip(f, 0, 255).astype(np.uint8)
        if rng.random() < 0.7:
            ok, buf = cv2.imencode(
                ".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))]
            )
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return out


def preview(fonts: Sequence[Path], n: int = 24, seed: int = 0) -> bytes:
    """A PNG sheet of n samples with their labels (to eyeball the generator)."""
    gen = SyntheticCrops(fonts, seed)
    rows = []
    for _ in range(n):
        s = gen.sample()
        img = cv2.resize(s.image, (max(8, round(48 * s.image.shape[1] / s.image.shape[0])), 48))
        row = np.full((56, 420, 3), 255, np.uint8)
        row[4:52, : min(300, img.shape[1])] = img[:, :300]
        cv2.putText(row, s.label, (305, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 200), 1)
        rows.append(row)
    _, buf = cv2.imencode(".png", np.concatenate(rows))
    return io.BytesIO(buf.tobytes()).getvalue()
