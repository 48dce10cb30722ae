"""Synthetic US licence plates, vehicles and road-camera frames, drawn with OpenCV only.

Real ALPR photos may not be copied into the project, so tests, the demo and the benchmarks
use these frames instead: every frame comes with its ground truth (the plate text).

What is drawn:

* plates: 12x6 in (2:1), several colour styles, Hershey fonts made bold and condensed
  like plate fonts, the state name on top, a slogan at the bottom, a border, optional
  bolt holes and a registration sticker. A dash or space may be printed between the
  character groups; the ground truth is only the letters and digits.
* frames: a road seen from a pole camera (asphalt, lane lines, texture), one car rear
  per plate with the plate on the bumper, per-frame perspective skew, blur, sensor noise,
  night lighting and a timestamp overlay like real cameras burn into their images.

Only the plate and vehicle are drawn per frame: the background and the noise fields are
rendered once and cached, so a 1280x720 frame takes a few milliseconds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from kernel.plate_text import normalise_plate

__all__ = [
    "DEFAULT_EPOCH_MS",
    "PLATE_FORMATS",
    "PLATE_STYLES",
    "PLATE_WIDTH_PX",
    "Conditions",
    "PlateStyle",
    "encode_jpeg",
    "plate_truth",
    "random_plate",
    "render_frame",
    "render_plate",
]

Image = NDArray[np.uint8]

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
SEPARATORS = "- "

# Format name (an example plate) -> pattern: L = letter, D = digit.
PLATE_FORMATS: dict[str, str] = {
    "ABC1234": "LLLDDDD",  # TX, NY, PA, ...
    "1ABC234": "DLLLDDD",  # CA
    "123ABC": "DDDLLL",  # printed 123-ABC or 123 ABC in many states
    "ABC123": "LLLDDD",
    "AB12345": "LLDDDDD",
    "ABCD12": "LLLLDD",  # CO's ABC-D12
}
_FORMAT_WEIGHTS = np.array([0.30, 0.15, 0.13, 0.15, 0.12, 0.15])
# Where a dash/space goes when the style prints one (index into the truth text).
_SEPARATOR_AT = {"LLLDDDD": 3, "DLLLDDD": 4, "DDDLLL": 3, "LLLDDD": 3, "LLDDDDD": 2, "LLLLDD": 3}

# Standard-issue serials skip I, O and Q in most states: printed, they are 1 and 0. The
# generator makes standard-issue plates (vanity plates are left to hotlist matching's
# OCR-equivalence), and the recogniser reads those glyphs as digits to match.
_LETTER_P = np.array([0.0 if c in "IOQ" else 1.0 for c in LETTERS])
_LETTER_P /= _LETTER_P.sum()

# Plate width in the frame at scale 1.0: chars are then ~ 55 px tall in a 1280x720 frame.
PLATE_WIDTH_PX = 240
_CANVAS_W, _CANVAS_H = 480, 240  # plates are drawn at 2x and downsampled (anti-aliasing)
_SKY_BAND_H = 58  # px of the canvas: the "mountains" style's green band, above the serial

# Plate characters: condensed bold open fonts shipped in sim/fonts/ (SIL OFL, from
# the @fontsource npm packages), close to the faces US states and EU countries use. The
# Hershey fonts (cv2.FONT_HERSHEY_*) are still accepted when asked for by number, but are
# not drawn by default: bolded single-stroke glyphs have shapes no plate has (a G that
# real OCR reads as O or B in every frame), which made the synthetic benchmarks measure
# the renderer instead of the recogniser and the vote.
_FONT_DIR = Path(__file__).with_name("fonts")
TTF_FONTS: tuple[str, ...] = (
    "roboto-condensed-latin-700-normal.woff",
    "oswald-latin-600-normal.woff",
    "barlow-condensed-latin-600-normal.woff",
)
_FONTS: tuple[int | str, ...] = TTF_FONTS
_FONT_WEIGHTS = np.array([0.4, 0.3, 0.3])

_SLOGANS = {
    "COLORADO": "COLORFUL COLORADO",
    "TEXAS": "THE LONE STAR STATE",
    "CALIFORNIA": "DMV.CA.GOV",
    "NEW YORK": "EMPIRE STATE",
    "ARIZONA": "GRAND CANYON STATE",
    "OHIO": "BIRTHPLACE OF AVIATION",
}
_DEFAULT_SLOGAN = "AMERICA THE BEAUTIFUL"


@dataclass(frozen=True)
class PlateStyle:
    name: str
    background: tuple[int, int, int]  # BGR
    text: tuple[int, int, int]
    accent: tuple[int, int, int]  # state name and slogan
    background_bottom: tuple[int, int, int] | None = None  # vertical gradient
    # A green sky band across the top with white peaks rising into it (Colorado since
    # 2000): its colour, or None. The characters stay on the plain background below it.
    mountains: tuple[int, int, int] | None = None


# BGR colours. Weights below keep the common white plates common.
PLATE_STYLES: tuple[PlateStyle, ...] = (
    PlateStyle("white-blue", (244, 244, 240), (110, 35, 15), (40, 30, 170)),
    PlateStyle("yellow-black", (40, 196, 238), (25, 25, 25), (25, 25, 25)),
    PlateStyle("white-maroon", (238, 240, 242), (35, 20, 125), (110, 45, 20)),
    PlateStyle("sky-gradient", (236, 210, 170), (105, 40, 20), (105, 40, 20), (248, 248, 246)),
    PlateStyle("mountains", (246, 248, 246), (45, 95, 20), (250, 250, 250), None, (45, 95, 20)),
    PlateStyle("dark", (45, 30, 25), (240, 240, 240), (60, 200, 235)),
)
_STYLE_WEIGHTS = np.array([0.28, 0.14, 0.16, 0.16, 0.18, 0.08])

_CAR_COLOURS = (
    (235, 235, 232),  # white
    (190, 190, 186),  # silver
    (40, 40, 42),  # black
    (85, 85, 88),  # grey
    (40, 40, 170),  # red
    (140, 80, 35),  # blue
    (60, 90, 50),  # green
    (150, 175, 190),  # beige
)

# Default clock of the timestamp overlay: 2026-11-22 07:41:03 UTC.
DEFAULT_EPOCH_MS = 1_795_333_263_000


# --------------------------------------------------------------------------- text


# The ground truth of printed plate text is the kernel's normal form: what a perfect read
# would give, so truth and reads compare directly.
plate_truth = normalise_plate


def _pattern_of(truth: str) -> str:
    return "".join("D" if c.isdigit() else "L" for c in truth)


def random_plate(rng: np.random.Generator, fmt: str | None = None) -> str:
    """A random plate (ground truth: A-Z and 0-9 only).

    `fmt` is a key of PLATE_FORMATS ("ABC1234"), a pattern ("LLLDDDD") or None for a
    realistic mix of formats.
    """
    if fmt is None:
        pattern = list(PLATE_FORMATS.values())[
            rng.choice(len(PLATE_FORMATS), p=_FORMAT_WEIGHTS / _FORMAT_WEIGHTS.sum())
        ]
    else:
        pattern = PLATE_FORMATS.get(fmt, fmt)
        if not pattern or set(pattern) - {"L", "D"}:
            raise ValueError(f"unknown plate format {fmt!r}: use a PLATE_FORMATS key or L/D")
    out = []
    for kind in pattern:
        if kind == "L":
            out.append(LETTERS[rng.choice(26, p=_LETTER_P)])
        else:
            out.append(DIGITS[rng.integers(10)])
    return "".join(out)


# --------------------------------------------------------------------------- glyphs

_GLYPH_CAP = 120  # cap height of cached glyph masks, px
_GLYPH_DESCENT = 0.22  # room below the baseline for the tail of Q, as a share of cap height
_CONDENSE = 0.62  # plate fonts are narrow: Hershey capitals are ~0.85 as wide as tall
_STROKE = 0.125  # stroke width as a share of cap height: plate characters are bold


@lru_cache(maxsize=512)
def _glyph(char: str, font: int | str) -> NDArray[np.float32]:
    """Alpha mask (0..1) of one character, cap height _GLYPH_CAP, read-only."""
    out = _ttf_glyph(char, font) if isinstance(font, str) else _hershey_glyph(char, font)
    out.flags.writeable = False  # shared by every caller through the cache
    return out


def _ttf_glyph(char: str, font_name: str) -> NDArray[np.float32]:
    """A glyph of a shipped font file, scaled so its capitals are _GLYPH_CAP tall, rows
    from the cap line to a little below the baseline, columns trimmed to the ink."""
    path = _FONT_DIR / font_name
    if not path.is_file():
        raise ValueError(f"unknown plate font {font_name!r}: expected a file in {_FONT_DIR}")
    probe = ImageFont.truetype(str(path), 200)
    _, cap_top, _, cap_bottom = probe.getbbox("H")
    font = ImageFont.truetype(str(path), round(200 * _GLYPH_CAP / (cap_bottom - cap_top)))
    _, cap_top, _, _ = font.getbbox("H")
    x0, _, x1, _ = font.getbbox(char)
    height = round(_GLYPH_CAP * (1 + _GLYPH_DESCENT))
    canvas = PILImage.new("L", (x1 - x0 + 4, height), 0)
    ImageDraw.Draw(canvas).text((2 - x0, -cap_top), char, font=font, fill=255)
    mask = np.asarray(canvas, np.float32) / 255.0
    cols = np.flatnonzero(mask.any(axis=0))
    return np.ascontiguousarray(mask[:, cols[0] : cols[-1] + 1])


def _hershey_glyph(char: str, font: int) -> NDArray[np.float32]:
    """A Hershey glyph made condensed and bold.

    Hershey fonts are single-stroke: drawn thin, squeezed horizontally, and only then
    thickened with a round kernel, so vertical and horizontal strokes end up equally bold
    (squeezing a thick glyph would make its vertical strokes thin).
    """
    scale = 6.0
    (_, cap), _ = cv2.getTextSize("H", font, scale, 1)
    pad = cap
    canvas = np.zeros((cap * 3, cap * 3), np.uint8)
    origin = (pad, pad + cap)
    cv2.putText(canvas, char, origin, font, scale, 255, 3, cv2.LINE_AA)
    # Rows: the cap line of "H" down to a little below the baseline (tails of Q, J).
    ref = np.zeros_like(canvas)
    cv2.putText(ref, "H", origin, font, scale, 255, 3, cv2.LINE_AA)
    ref_rows = np.flatnonzero(ref.any(axis=1))
    top, base = int(ref_rows[0]), int(ref_rows[-1]) + 1
    bottom = base + int(_GLYPH_DESCENT * (base - top))
    cols = np.flatnonzero(canvas[top:bottom].any(axis=0))
    crop = canvas[top:bottom, cols[0] : cols[-1] + 1]
    h_src = base - top
    k = _GLYPH_CAP / h_src
    out_h = round(crop.shape[0] * k)
    out_w = max(1, round(crop.shape[1] * k * _CONDENSE))
    small = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
    stroke = max(3, round(_STROKE * _GLYPH_CAP) - 3)
    pad2 = stroke // 2 + 1
    small = cv2.copyMakeBorder(small, pad2, pad2, pad2, pad2, cv2.BORDER_CONSTANT, value=0)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (stroke, stroke))
    bold = cv2.dilate(small, kernel)
    # Trim back to the cap line so every glyph's row 0 is the top of the capitals.
    bold = bold[pad2 - stroke // 2 :, :]
    return np.ascontiguousarray(bold, dtype=np.float32) / 255.0


def _text_mask(
    text: str, font: int | str, box_w: int, cap_h: int
) -> tuple[NDArray[np.float32], int]:
    """Alpha mask of the plate characters laid out at a fixed pitch; returns (mask, width).

    Plate fonts are monospaced: "1" sits in as wide a cell as "M". A separator takes
    half a cell and is drawn as a short bar (dash) or left blank (space).
    """
    n_chars = sum(c not in SEPARATORS for c in text)
    n_seps = len(text) - n_chars
    pitch = min(box_w / max(1.0, n_chars + 0.5 * n_seps), cap_h * 0.66)
    k = cap_h / _GLYPH_CAP
    height = round(cap_h * (1 + _GLYPH_DESCENT) + 0.2 * cap_h)
    width = int(np.ceil(pitch * (n_chars + 0.5 * n_seps))) + 2  # + rounding slack
    mask = np.zeros((height, width), np.float32)
    x = 0.0
    for c in text:
        if c in SEPARATORS:
            if c == "-":
                bar_w, bar_h = round(0.28 * pitch), max(2, round(_STROKE * cap_h))
                cx = round(x + 0.25 * pitch)
                y0 = round(cap_h * 0.5 - bar_h / 2)
                mask[y0 : y0 + bar_h, cx - bar_w // 2 : cx - bar_w // 2 + bar_w] = 1.0
            x += 0.5 * pitch
            continue
        g = _glyph(c, font)
        gw = max(1, round(g.shape[1] * k))
        gh = min(height, round(g.shape[0] * k))
        # A wide glyph (M, W) is squeezed into its cell rather than overlapping the next.
        gw = min(gw, round(pitch * 0.9))
        g = cv2.resize(g, (gw, gh), interpolation=cv2.INTER_AREA)
        x0 = round(x + (pitch - gw) / 2)
        np.maximum(mask[0:gh, x0 : x0 + gw], g, out=mask[0:gh, x0 : x0 + gw])
        x += pitch
    return mask, width


def _put_centered(
    img: Image,
    text: str,
    center_x: int,
    top: int,
    cap_h: int,
    max_w: int,
    font: int,
    colour: tuple[int, int, int],
    thickness: int,
) -> None:
    """Draw small text (state name, slogan) with its capitals `cap_h` tall, centred."""
    (_, h1), _ = cv2.getTextSize("H", font, 1.0, thickness)
    scale = cap_h / h1
    (w, _), _ = cv2.getTextSize(text, font, scale, thickness)
    if w > max_w:
        scale *= max_w / w
        w = max_w
    cv2.putText(
        img, text, (center_x - w // 2, top + cap_h), font, scale, colour, thickness, cv2.LINE_AA
    )


def _blend_colour(
    img: Image, mask: NDArray[np.float32], x0: int, y0: int, colour: tuple[int, int, int]
) -> None:
    """img[roi] = img * (1 - mask) + colour * mask, clipped to the image."""
    h, w = mask.shape
    x1, y1 = min(img.shape[1], x0 + w), min(img.shape[0], y0 + h)
    mx, my = max(0, -x0), max(0, -y0)
    x0, y0 = max(0, x0), max(0, y0)
    if x1 <= x0 or y1 <= y0:
        return
    a = mask[my : my + y1 - y0, mx : mx + x1 - x0, None]
    roi = img[y0:y1, x0:x1].astype(np.float32)
    roi += (np.asarray(colour, np.float32) - roi) * a
    img[y0:y1, x0:x1] = roi.astype(np.uint8)


# --------------------------------------------------------------------------- plates


@dataclass(frozen=True)
class _PlateLook:
    """Everything that decides how a plate looks; the same look draws the same pixels."""

    text: str  # as printed, with its separator
    state: str
    style: int
    font: int | str  # one of TTF_FONTS, or a Hershey font number
    bolt_holes: bool
    sticker: int  # 0 none, 1 top-left, 2 top-right
    sticker_hue: int


def _display_text(truth: str, separator: str) -> str:
    if not separator or len(truth) < 5:
        return truth
    at = _SEPARATOR_AT.get(_pattern_of(truth))
    if at is None:  # unknown format: split at the letter/digit change nearest the middle
        changes = [i for i in range(1, len(truth)) if truth[i].isdigit() != truth[i - 1].isdigit()]
        if not changes:
            return truth
        at = min(changes, key=lambda i: abs(i - len(truth) / 2))
    return truth[:at] + separator + truth[at:]


def _pick_look(
    text: str, rng: np.random.Generator, state: str, style: int | None, font: int | str | None
) -> _PlateLook:
    text = text.upper()
    if any(c not in LETTERS + DIGITS + SEPARATORS for c in text) or not plate_truth(text):
        raise ValueError(f"plate text must be A-Z, 0-9 and '-' or ' ': {text!r}")
    if style is None:
        style = int(rng.choice(len(PLATE_STYLES), p=_STYLE_WEIGHTS / _STYLE_WEIGHTS.sum()))
    elif not 0 <= style < len(PLATE_STYLES):
        raise ValueError(f"style must be 0..{len(PLATE_STYLES) - 1}")
    if font is None:
        font = _FONTS[int(rng.choice(len(_FONTS), p=_FONT_WEIGHTS / _FONT_WEIGHTS.sum()))]
    # Separator: printed verbatim when the caller gave one, else ~half the plates get one.
    if not any(c in SEPARATORS for c in text):
        text = _display_text(text, ("", "", "-", " ")[rng.integers(4)])
    return _PlateLook(
        text=text,
        state=state.upper(),
        style=style,
        font=font,
        bolt_holes=bool(rng.random() < 0.6),
        sticker=int(rng.choice(3, p=[0.4, 0.3, 0.3])),
        sticker_hue=int(rng.integers(0, 180)),
    )


@lru_cache(maxsize=256)
def _draw_plate(look: _PlateLook) -> Image:
    """The plate at 2x (480x240). Cached: a pass shows the same plate in every frame."""
    st = PLATE_STYLES[look.style]
    w, h = _CANVAS_W, _CANVAS_H
    img = np.empty((h, w, 3), np.uint8)
    if st.background_bottom is None:
        img[:] = st.background
    else:
        t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        top = np.asarray(st.background, np.float32)
        bottom = np.asarray(st.background_bottom, np.float32)
        img[:] = (top + (bottom - top) * t).astype(np.uint8)
    if st.mountains is not None:
        # Colorado's plate since 2000: the state name in white on a green sky, white peaks
        # rising into it, the serial in green on white below. (Until stop 13 the range
        # was drawn green across the characters' lower third, in their own hue: the F's
        # foot, V's fork and G's spur vanished into it in every frame, which no real plate
        # does and which made those passes unreadable to a person too.)
        img[:_SKY_BAND_H] = st.mountains
        xs = np.linspace(0, w, 13)
        ys = np.array([57, 49, 52, 45, 50, 46, 51, 47, 53, 48, 52, 50, 57])
        pts = np.array([[0, _SKY_BAND_H], *zip(xs, ys, strict=True), [w, _SKY_BAND_H]], np.int32)
        cv2.fillPoly(img, [pts], st.background, cv2.LINE_AA)
    cv2.rectangle(img, (5, 5), (w - 6, h - 6), st.text, 4, cv2.LINE_AA)

    cap = round(0.46 * h)  # US plate characters are ~2.75 in on a 6 in plate
    mask, text_w = _text_mask(look.text, look.font, w - 44, cap)
    _blend_colour(img, mask, (w - text_w) // 2, 62, st.text)

    # The state name in a different face from the characters, as on real plates.
    state_font = cv2.FONT_HERSHEY_TRIPLEX
    if look.font == cv2.FONT_HERSHEY_TRIPLEX:
        state_font = cv2.FONT_HERSHEY_DUPLEX
    _put_centered(img, look.state, w // 2, 17, 30, 250, state_font, st.accent, 3)
    slogan = _SLOGANS.get(look.state, _DEFAULT_SLOGAN)
    slogan_colour = st.accent if st.mountains is None else st.text
    _put_centered(img, slogan, w // 2, 199, 18, 240, cv2.FONT_HERSHEY_SIMPLEX, slogan_colour, 2)

    if look.sticker:
        x0 = 22 if look.sticker == 1 else w - 22 - 58
        hsv = np.uint8([[[look.sticker_hue, 200, 230]]])
        colour = tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
        cv2.rectangle(img, (x0, 16), (x0 + 58, 50), colour, -1)
        cv2.putText(img, "26", (x0 + 14, 42), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2)
    if look.bolt_holes:
        # Standard US holes: 7 in apart, 0.5 in from the top and bottom edges.
        for x in (w // 2 - 140, w // 2 + 140):
            for y in (20, h - 20):
                cv2.circle(img, (x, y), 7, (30, 30, 30), -1, cv2.LINE_AA)
                cv2.circle(img, (x, y), 9, (150, 150, 150), 2, cv2.LINE_AA)
    img.flags.writeable = False
    return img


def render_plate(
    text: str,
    rng: np.random.Generator,
    state: str = "COLORADO",
    style: int | None = None,
    font: int | str | None = None,
    *,
    width: int = PLATE_WIDTH_PX,
) -> Image:
    """A flat, front-on plate image (BGR uint8, `width` x `width // 2`).

    `text` is printed as given; a dash or space in it is printed, and when it has none the
    style may add one between the groups. The ground truth is `plate_truth(text)`.
    `style` indexes PLATE_STYLES and `font` is one of TTF_FONTS (or a cv2.FONT_HERSHEY_*
    constant); None picks them with `rng`.
    """
    look = _pick_look(text, rng, state, style, font)
    return _resize_plate(_draw_plate(look), width)


def _resize_plate(plate: Image, width: int) -> Image:
    width = max(8, int(width))
    return cv2.resize(plate, (width, width // 2), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Conditions:
    """How the camera sees the scene.

    blur: Gaussian sigma in px (focus, motion); noise: sensor noise std in grey levels;
    night: dark frame, headlight glare, the plate lit by its lamp more than the scene;
    perspective: max plate skew in degrees (yaw/pitch; roll is a third of it);
    jpeg_quality: what the camera encodes with; plate_scale: how large plates look (the
    camera's zoom and distance to the lane), multiplying each plate's scale.
    """

    blur: float = 0.0
    noise: float = 0.0
    night: bool = False
    perspective: float = 0.0
    jpeg_quality: int = 85
    plate_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.blur < 0 or self.noise < 0 or self.perspective < 0:
            raise ValueError("blur, noise and perspective must be >= 0")
        if self.plate_scale <= 0:
            raise ValueError("plate_scale must be > 0")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be 1..100")

    @classmethod
    def clean(cls) -> Conditions:
        """Sharp, noiseless daylight, plate square to the camera."""
        return cls(blur=0.0, noise=0.0, night=False, perspective=0.0, jpeg_quality=90)

    @classmethod
    def typical(cls, rng: np.random.Generator) -> Conditions:
        """A good fixed ALPR camera: slight softness and noise, a quarter of it at night."""
        return cls(
            blur=float(rng.uniform(0.4, 1.1)),
            noise=float(rng.uniform(2.0, 5.0)),
            night=bool(rng.random() < 0.25),
            perspective=float(rng.uniform(4.0, 12.0)),
            jpeg_quality=int(rng.integers(78, 91)),
        )

    @classmethod
    def hard(cls, rng: np.random.Generator) -> Conditions:
        """Motion blur, noisy sensor, half at night, strong angle, heavy compression."""
        return cls(
            blur=float(rng.uniform(1.6, 2.6)),
            noise=float(rng.uniform(7.0, 12.0)),
            night=bool(rng.random() < 0.5),
            perspective=float(rng.uniform(14.0, 24.0)),
            jpeg_quality=int(rng.integers(55, 72)),
        )

    @classmethod
    def severe(cls, rng: np.random.Generator) -> Conditions:
        """A far, wide-angle camera: plates 70-170 px wide (characters 15-35 px tall, as in
        the real US photos), blurred, noisy, half at night, heavily compressed. Tuned so
        single frames are read right about 85% of the time: the conditions under which
        multi-frame voting has to earn its keep."""
        return cls(
            blur=float(rng.uniform(1.2, 2.0)),
            noise=float(rng.uniform(8.0, 14.0)),
            night=bool(rng.random() < 0.5),
            perspective=float(rng.uniform(14.0, 24.0)),
            jpeg_quality=int(rng.integers(40, 60)),
            plate_scale=float(rng.uniform(0.32, 0.44)),
        )

    @classmethod
    def preset(cls, name: str, rng: np.random.Generator) -> Conditions:
        """`clean`, `typical`, `hard` or `severe` by name."""
        if name == "clean":
            return cls.clean()
        if name == "typical":
            return cls.typical(rng)
        if name == "hard":
            return cls.hard(rng)
        if name == "severe":
            return cls.severe(rng)
        raise ValueError(f"unknown conditions {name!r}: clean, typical, hard or severe")


# --------------------------------------------------------------------------- scene


def _line_poly(
    vp: tuple[float, float], bottom: tuple[float, float], t0: float, t1: float, width: float
) -> NDArray[np.int32]:
    """Quad of a road marking between parameters t0 < t1 on the ray vp -> bottom.

    A marking `width` px wide at the bottom narrows linearly towards the vanishing point.
    """
    (vx, vy), (bx, by) = vp, bottom
    pts = []
    for t, side in ((t0, -1), (t1, -1), (t1, 1), (t0, 1)):
        x = vx + (bx - vx) * t + side * width * t / 2
        y = vy + (by - vy) * t
        pts.append((x, y))
    if pts[0][0] > pts[3][0]:
        pts = pts[::-1]
    return np.round(np.array(pts) * 16).astype(np.int32)  # 4 fractional bits


def _draw_marking(
    img: NDArray[np.float32],
    vp: tuple[float, float],
    bottom: tuple[float, float],
    width: float,
    colour: tuple[float, float, float],
    dashed: bool,
) -> None:
    if not dashed:
        segments = [(0.0, 1.6)]
    else:
        # Dashes evenly spaced along the road: depth ~ 1/t, so equal steps in 1/t.
        segments = []
        d = 1.0 / 1.6
        while d < 30.0:
            t1, t0 = 1.0 / d, 1.0 / (d + 0.35)
            segments.append((t0, t1))
            d += 1.0
    for t0, t1 in segments:
        poly = _line_poly(vp, bottom, t0, t1, width)
        cv2.fillConvexPoly(img, poly, colour, cv2.LINE_AA, shift=4)


@lru_cache(maxsize=16)
def _background(scene_seed: int, width: int, height: int, night: bool) -> Image:
    """The empty road for one camera: rendered once, copied for every frame.

    The geometry matches the vehicle paths of render_frame callers: the lane runs from the
    bottom-left towards a vanishing point above the top-right corner.
    """
    rng = np.random.default_rng(scene_seed)
    w, h = width, height
    grey = float(rng.uniform(88, 112))
    # Far road (top) is a little lighter: grazing angle, more sky reflection.
    ramp = np.linspace(grey + 14, grey - 6, h, dtype=np.float32)[:, None]
    blotch = rng.normal(0, 1, (h // 48 + 2, w // 48 + 2)).astype(np.float32)
    blotch = cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC) * 7.0
    grain = rng.normal(0, 7, (h, w)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.7) * 1.6
    lum = ramp + blotch + grain
    tint = np.array([rng.uniform(-2, 5), 0.0, rng.uniform(-5, 2)], np.float32)
    img = lum[:, :, None] + tint

    vp = (w * rng.uniform(1.15, 1.3), -h * rng.uniform(0.5, 0.7))
    lane_w = w * rng.uniform(0.9, 1.0)  # at the bottom edge
    centre = w * rng.uniform(0.2, 0.26)
    left, right = centre - lane_w / 2, centre + lane_w / 2
    # Shoulder and sidewalk to the right of the edge line: lighter concrete.
    curb = right + lane_w * 0.35
    side = np.array([[curb, h], [vp[0], vp[1]], [w * 3, vp[1]], [w * 3, h]]) * 16
    concrete = float(rng.uniform(135, 160))
    cv2.fillConvexPoly(img, np.round(side).astype(np.int32), (concrete,) * 3, cv2.LINE_AA, 4)
    img[:, :, :] += grain[:, :, None] * 0.6  # texture on the concrete too
    # Oil drip line down the middle of the lane, tyre polish either side of it.
    for off, dv in ((0.0, -9.0), (-0.27, 5.0), (0.27, 5.0)):
        poly = _line_poly(vp, (centre + off * lane_w, h), 0.0, 1.6, lane_w * 0.12)
        stripe = np.zeros((h, w), np.float32)
        cv2.fillConvexPoly(stripe, poly, 1.0, cv2.LINE_AA, shift=4)
        img += cv2.GaussianBlur(stripe, (0, 0), 12)[:, :, None] * dv
    # Cracks and patches.
    for _ in range(int(rng.integers(3, 7))):
        pts = [(rng.uniform(0, w), rng.uniform(0, h))]
        for _ in range(int(rng.integers(4, 10))):
            x, y = pts[-1]
            pts.append((x + rng.normal(0, 25), y + rng.normal(0, 25)))
        cv2.polylines(img, [np.int32(pts)], False, (grey - 22,) * 3, 1, cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 4))):
        c = (int(rng.uniform(0, w)), int(rng.uniform(h * 0.2, h)))
        axes = (int(rng.uniform(30, 120)), int(rng.uniform(15, 60)))
        shade = grey + rng.uniform(-10, -4)
        cv2.ellipse(img, c, axes, rng.uniform(0, 180), 0, 360, (shade,) * 3, -1, cv2.LINE_AA)

    paint = 215.0
    _draw_marking(img, vp, (left, h), 22, (paint,) * 3, dashed=True)
    _draw_marking(img, vp, (right, h), 26, (paint,) * 3, dashed=False)
    yellow = (40.0, 185.0, 215.0)
    for off in (-20, 20):
        _draw_marking(img, vp, (left - lane_w + off, h), 18, yellow, dashed=False)
    # Worn paint: multiply everything by a little low-frequency texture.
    wear = rng.normal(1.0, 0.05, (h // 8, w // 8)).astype(np.float32)
    img *= cv2.resize(wear, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, None]

    if night:
        # Street-lit at night: dark, bluish, with a sodium-orange pool under one lamp.
        img *= np.array([0.17, 0.16, 0.15], np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        lx, ly = w * rng.uniform(0.1, 0.9), h * rng.uniform(0.0, 0.5)
        pool = np.exp(-(((xx - lx) / (w * 0.35)) ** 2 + ((yy - ly) / (h * 0.45)) ** 2))
        img += pool[:, :, None] * np.array([10.0, 30.0, 48.0], np.float32)
    out = np.clip(img, 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out


_NOISE_TILE = (424, 704)  # rows, cols: > half of 720p plus room for random offsets


@lru_cache(maxsize=32)
def _noise_tile(std: int) -> tuple[Image, Image]:
    """Gaussian noise of `std` grey levels as (positive part, negative part), uint8.

    Drawing 2.8 M normals per frame would cost more than the rest of the frame, so one
    tile is drawn per noise level and random windows of it cover the frame. Splitting it
    by sign lets saturating cv2.add/subtract apply it in about a millisecond.
    """
    rng = np.random.default_rng(1000 + std)
    n = rng.normal(0.0, std, (*_NOISE_TILE, 3)).astype(np.float32)
    return np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)


def _add_noise(img: Image, std: float, rng: np.random.Generator) -> None:
    """Add sensor noise in place, a random window of the cached tile per image block."""
    pos, neg = _noise_tile(round(std))
    th, tw = _NOISE_TILE[0] - 64, _NOISE_TILE[1] - 64
    for y in range(0, img.shape[0], th):
        for x in range(0, img.shape[1], tw):
            block = img[y : y + th, x : x + tw]
            bh, bw = block.shape[:2]
            oy, ox = (int(v) for v in rng.integers(0, 65, 2))
            cv2.add(block, pos[oy : oy + bh, ox : ox + bw], dst=block)
            cv2.subtract(block, neg[oy : oy + bh, ox : ox + bw], dst=block)


@lru_cache(maxsize=4)
def _glow_sprite(size: int) -> NDArray[np.float32]:
    """A soft round light (0..1), for headlight glare and tail-light glow."""
    r = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    d2 = r[None, :] ** 2 + r[:, None] ** 2
    return np.exp(-d2 * 5.0) + 0.6 * np.exp(-d2 * 40.0)


def _add_light(
    img: Image, cx: float, cy: float, radius: float, colour: tuple[float, float, float]
) -> None:
    """Additive light blob (saturating), clipped to the image."""
    size = max(4, int(radius * 2))
    sprite = cv2.resize(_glow_sprite(128), (size, size), interpolation=cv2.INTER_LINEAR)
    x0, y0 = int(cx - size / 2), int(cy - size / 2)
    x1, y1 = min(img.shape[1], x0 + size), min(img.shape[0], y0 + size)
    sx, sy = max(0, -x0), max(0, -y0)
    x0, y0 = max(0, x0), max(0, y0)
    if x1 <= x0 or y1 <= y0:
        return
    s = sprite[sy : sy + y1 - y0, sx : sx + x1 - x0, None] * np.asarray(colour, np.float32)
    roi = img[y0:y1, x0:x1]
    img[y0:y1, x0:x1] = np.clip(roi + s, 0, 255).astype(np.uint8)


def _rounded_rect(
    img: Image,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    r: float,
    colour: tuple[int, ...],
) -> None:
    """Filled rectangle with rounded corners (anti-aliased polygon)."""
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    ang = np.linspace(0, np.pi / 2, 6)
    pts = []
    for cx, cy, start in (
        (x1 - r, y0 + r, -np.pi / 2),
        (x1 - r, y1 - r, 0.0),
        (x0 + r, y1 - r, np.pi / 2),
        (x0 + r, y0 + r, np.pi),
    ):
        a = ang + start
        pts.extend(zip(cx + r * np.cos(a), cy + r * np.sin(a), strict=True))
    poly = np.round(np.array(pts) * 16).astype(np.int32)
    cv2.fillConvexPoly(img, poly, colour, cv2.LINE_AA, shift=4)


def _poly(img: Image, pts: list[tuple[float, float]], colour: tuple[int, ...]) -> None:
    cv2.fillConvexPoly(
        img, np.round(np.array(pts) * 16).astype(np.int32), colour, cv2.LINE_AA, shift=4
    )


def _shade(colour: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    b, g, r = (int(min(255.0, c * k)) for c in colour)
    return b, g, r


@dataclass(frozen=True)
class _Vehicle:
    """How one plate's vehicle looks: a stable function of the plate and the scene."""

    look: _PlateLook
    colour: tuple[int, int, int]
    suv: bool
    width_k: float  # car width / plate width
    yaw: float  # -1..1, times Conditions.perspective
    pitch: float
    roll: float


def _vehicle_for(text: str, scene_seed: int, state: str) -> _Vehicle:
    # Seeded by the plate, so every frame of a pass shows the same car and plate.
    rng = np.random.default_rng([zlib.crc32(text.encode()), scene_seed & 0xFFFFFFFF])
    look = _pick_look(text, rng, state, None, None)
    return _Vehicle(
        look=look,
        colour=_CAR_COLOURS[rng.integers(len(_CAR_COLOURS))],
        suv=bool(rng.random() < 0.4),
        width_k=float(rng.uniform(2.7, 3.0)),
        yaw=float(rng.uniform(-1, 1)),
        pitch=float(rng.uniform(-0.6, 0.6)),
        roll=float(rng.uniform(-1, 1)) / 3,
    )


def _draw_car(img: Image, v: _Vehicle, px: float, py: float, pw: float, dim: float) -> None:
    """Rear view of a car whose plate centre is (px, py) and plate width pw.

    Proportions are in units of the car's width u (a real car is ~6 plate widths wide;
    ~3 keeps the plate large enough to read without the car filling the whole frame).
    """
    u = pw * v.width_k
    body = _shade(v.colour, dim)
    dark = _shade(v.colour, dim * 0.6)
    trim = _shade((28, 28, 30), dim * 1.5)
    glass = _shade((50, 45, 40), dim)
    red = _shade((30, 30, 190), max(dim, 0.55))
    hx = u / 2
    roof = py - (0.66 if v.suv else 0.55) * u
    belt = py - (0.28 if v.suv else 0.24) * u

    # Tyres, then the body over them.
    for side in (-1, 1):
        x_in, x_out = px + side * 0.30 * u, px + side * 0.47 * u
        _rounded_rect(
            img,
            min(x_in, x_out),
            py + 0.08 * u,
            max(x_in, x_out),
            py + 0.22 * u,
            0.02 * u,
            _shade((26, 26, 26), dim),
        )
    # Cabin: a trapezoid narrowing to the roof, rear window inside it.
    top_hx = hx * (0.80 if v.suv else 0.66)
    _poly(
        img,
        [(px - hx * 0.92, belt), (px - top_hx, roof), (px + top_hx, roof), (px + hx * 0.92, belt)],
        body,
    )
    inset = 0.035 * u
    wy0, wy1 = roof + inset, belt - inset * (0.5 if v.suv else 1.2)
    _poly(
        img,
        [
            (px - hx * 0.84, wy1),
            (px - top_hx + inset, wy0),
            (px + top_hx - inset, wy0),
            (px + hx * 0.84, wy1),
        ],
        glass,
    )
    # Sky reflection across the glass.
    refl = _shade((95, 88, 80), dim)
    _poly(
        img,
        [
            (px - top_hx * 0.5, wy0),
            (px - top_hx * 0.2, wy0),
            (px - hx * 0.55, wy1),
            (px - hx * 0.75, wy1),
        ],
        refl,
    )
    # Third brake light at the top of the window.
    _rounded_rect(
        img, px - 0.07 * u, wy0 + 0.004 * u, px + 0.07 * u, wy0 + 0.016 * u, 0.005 * u, red
    )
    # Lower body (trunk lid down to the bumper), with a darker lower half for roundness.
    _rounded_rect(img, px - hx, belt - 0.02 * u, px + hx, py + 0.15 * u, 0.07 * u, body)
    _rounded_rect(
        img, px - hx * 0.985, py + 0.02 * u, px + hx * 0.985, py + 0.15 * u, 0.06 * u, dark
    )
    cv2.line(
        img,
        (int(px - hx * 0.9), int(belt + 0.03 * u)),
        (int(px + hx * 0.9), int(belt + 0.03 * u)),
        _shade(v.colour, dim * 1.25),
        max(1, int(u * 0.005)),
        cv2.LINE_AA,
    )
    # Bumper.
    _rounded_rect(
        img, px - hx * 1.01, py + 0.085 * u, px + hx * 1.01, py + 0.16 * u, 0.03 * u, trim
    )
    # Tail lights at the outer corners.
    for side in (-1, 1):
        xa, xb = px + side * 0.48 * u, px + side * 0.30 * u
        _rounded_rect(
            img, min(xa, xb), belt + 0.015 * u, max(xa, xb), belt + 0.09 * u, 0.015 * u, red
        )
        ia, ib = px + side * 0.455 * u, px + side * 0.40 * u
        _rounded_rect(
            img,
            min(ia, ib),
            belt + 0.03 * u,
            max(ia, ib),
            belt + 0.075 * u,
            0.01 * u,
            _shade((70, 70, 230), max(dim, 0.6)),
        )
    # Maker's badge.
    _rounded_rect(
        img,
        px - 0.035 * u,
        belt + 0.035 * u,
        px + 0.035 * u,
        belt + 0.06 * u,
        0.01 * u,
        _shade((200, 200, 205), dim),
    )


def _plate_quad(
    w: float, h: float, yaw_deg: float, pitch_deg: float, roll_deg: float
) -> NDArray[np.float32]:
    """Image corners of a w x h plate turned by yaw/pitch/roll, centred on (0, 0)."""
    ya, pa, ra = np.radians([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(ya), 0, np.sin(ya)], [0, 1, 0], [-np.sin(ya), 0, np.cos(ya)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pa), -np.sin(pa)], [0, np.sin(pa), np.cos(pa)]])
    rz = np.array([[np.cos(ra), -np.sin(ra), 0], [np.sin(ra), np.cos(ra), 0], [0, 0, 1]])
    corners = np.array(
        [[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]]
    )
    p = corners @ (rz @ rx @ ry).T
    f = 3.0 * w  # a moderate telephoto: some keystone, not fish-eye
    z = f + p[:, 2]
    return np.stack([p[:, 0] * f / z, p[:, 1] * f / z], axis=1).astype(np.float32)


def _place_plate(
    img: Image,
    plate: Image,
    cx: float,
    cy: float,
    angles: tuple[float, float, float],
    light: float,
) -> None:
    """Warp `plate` by the angles and composite it centred on (cx, cy), in a dark holder."""
    h, w = plate.shape[:2]
    quad = _plate_quad(w, h, *angles) + np.float32([cx, cy])
    # The plate holder / recess: a dark rim around the plate, following its skew.
    centre = quad.mean(axis=0)
    holder = centre + (quad - centre) * np.float32([1.06, 1.12])
    _poly(img, [tuple(p) for p in holder], (18, 18, 18))

    x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 2
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src, quad - np.float32([x0, y0]))
    size = (int(x1 - x0), int(y1 - y0))
    warped = cv2.warpPerspective(plate, m, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(np.ones((h, w), np.float32), m, size, flags=cv2.INTER_LINEAR)
    if light != 1.0:
        warped = cv2.convertScaleAbs(warped, alpha=light)
    # Clip to the frame, then alpha-composite.
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(img.shape[1], x1), min(img.shape[0], y1)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    sl = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    a = alpha[sl][:, :, None]
    roi = img[fy0:fy1, fx0:fx1].astype(np.float32)
    roi += (warped[sl].astype(np.float32) - roi) * a
    img[fy0:fy1, fx0:fx1] = roi.astype(np.uint8)


def _timestamp(img: Image, ms: int, label: str) -> None:
    """The camera's burnt-in clock: white on a black outline, top-left."""
    t = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = f"{t} {label}"
    org = (16, 34)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, text, org, font, 0.8, (0, 0, 0), 5, cv2.LINE_AA)
    cv2.putText(img, text, org, font, 0.8, (255, 255, 255), 2, cv2.LINE_AA)


def render_frame(
    plates: list[tuple[str, float, float, float]],
    rng: np.random.Generator,
    conditions: Conditions,
    width: int = 1280,
    height: int = 720,
    state: str = "COLORADO",
    *,
    scene_seed: int = 0,
    timestamp_ms: int | None = None,
    camera_label: str = "CAM-12",
) -> Image:
    """One camera frame (BGR uint8, height x width) with a car per plate.

    Each plate is (text, x_centre_frac, y_centre_frac, scale): the plate centre in
    fractions of the frame, and its width PLATE_WIDTH_PX * scale px. Vehicles are drawn
    in list order (later ones in front). The car and plate look are a function of the
    text and `scene_seed`, so a plate looks the same in every frame; `rng` only varies
    per-frame things (skew jitter, glare, noise window). `scene_seed` picks the road
    (one per camera); `timestamp_ms` is the time burnt into the overlay.
    """
    img = _background(int(scene_seed), int(width), int(height), bool(conditions.night)).copy()
    dim = 0.28 if conditions.night else 1.0
    if conditions.night:
        # Headlights of other traffic, drawn before the vehicles so these occlude them.
        for _ in range(int(rng.integers(1, 4))):
            gx, gy = rng.uniform(0, width), rng.uniform(0, height * 0.5)
            r = rng.uniform(50, 150)
            _add_light(img, gx, gy, r, (210.0, 225.0, 235.0))
            _add_light(img, gx + r * 0.8, gy, r, (210.0, 225.0, 235.0))

    for text, fx, fy, scale in plates:
        v = _vehicle_for(text.upper(), int(scene_seed), state)
        pw = PLATE_WIDTH_PX * float(scale) * conditions.plate_scale
        px, py = fx * width, fy * height
        u = pw * v.width_k
        # Soft shadow under the car: darken an ellipse of the road.
        shadow = np.zeros((int(0.3 * u) + 2, int(1.2 * u) + 2), np.float32)
        cv2.ellipse(
            shadow,
            (shadow.shape[1] // 2, shadow.shape[0] // 2),
            (int(0.55 * u), int(0.1 * u)),
            0,
            0,
            360,
            0.55,
            -1,
        )
        shadow = cv2.blur(shadow, (15, 15))
        _blend_colour(
            img,
            shadow,
            int(px - shadow.shape[1] / 2),
            int(py + 0.2 * u - shadow.shape[0] / 2),
            (10, 10, 10),
        )
        _draw_car(img, v, px, py, pw, dim)

        jitter = rng.uniform(0.8, 1.2, 3)
        p = conditions.perspective
        angles = (v.yaw * p * jitter[0], v.pitch * p * jitter[1], v.roll * p * jitter[2])
        plate = _resize_plate(_draw_plate(v.look), round(pw))
        # At night the plate lamp lights the plate far more than the rest of the car.
        light = float(rng.uniform(0.75, 0.9)) if conditions.night else float(rng.uniform(0.9, 1.0))
        _place_plate(img, plate, px, py, angles, light)
        if conditions.night:
            for side in (-1, 1):
                _add_light(img, px + side * 0.39 * u, py - 0.19 * u, 0.18 * u, (30.0, 40.0, 150.0))

    if conditions.blur > 0.05:
        cv2.GaussianBlur(img, (0, 0), conditions.blur, dst=img)
    if conditions.noise > 0.5:
        _add_noise(img, conditions.noise, rng)
    # The overlay is drawn by the camera after capture: sharp, no sensor noise.
    _timestamp(img, DEFAULT_EPOCH_MS if timestamp_ms is None else int(timestamp_ms), camera_label)
    return img


def encode_jpeg(image: Image, quality: int = 85) -> bytes:
    """JPEG bytes of a BGR image, as a camera would send them."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("cv2.imencode failed")
    return buf.tobytes()
