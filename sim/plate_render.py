"""Synthetic US licence plates, drawn with OpenCV and the shipped open fonts (the road
scenes and frames they are placed in: sim/scene.py).

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

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from kernel.plate_text import normalise_plate

__all__ = [
    "PLATE_FORMATS",
    "PLATE_STYLES",
    "PLATE_WIDTH_PX",
    "PlateStyle",
    "plate_truth",
    "random_plate",
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


def blend_colour(
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
class PlateLook:
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


def pick_look(
    text: str, rng: np.random.Generator, state: str, style: int | None, font: int | str | None
) -> PlateLook:
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
    return PlateLook(
        text=text,
        state=state.upper(),
        style=style,
        font=font,
        bolt_holes=bool(rng.random() < 0.6),
        sticker=int(rng.choice(3, p=[0.4, 0.3, 0.3])),
        sticker_hue=int(rng.integers(0, 180)),
    )


@lru_cache(maxsize=256)
def draw_plate(look: PlateLook) -> Image:
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
    blend_colour(img, mask, (w - text_w) // 2, 62, st.text)

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
    look = pick_look(text, rng, state, style, font)
    return resize_plate(draw_plate(look), width)


def resize_plate(plate: Image, width: int) -> Image:
    width = max(8, int(width))
    return cv2.resize(plate, (width, width // 2), interpolation=cv2.INTER_AREA)
