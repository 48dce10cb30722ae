"""Road-camera frames with synthetic plates: the road seen from a pole camera (asphalt,
lane lines, texture), one car rear per plate with its plate (sim/plate_render.py) on the
bumper, per-frame perspective skew, blur, sensor noise, night lighting and a timestamp
overlay like real cameras burn into their images.

Only the plate and vehicle are drawn per frame: the background and the noise fields are
rendered once and cached, so a 1280x720 frame takes a few milliseconds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from sim.plate_render import (
    PLATE_WIDTH_PX,
    Image,
    PlateLook,
    blend_colour,
    draw_plate,
    pick_look,
    resize_plate,
)

__all__ = ["DEFAULT_EPOCH_MS", "Conditions", "encode_jpeg", "render_frame"]

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

    look: PlateLook
    colour: tuple[int, int, int]
    suv: bool
    width_k: float  # car width / plate width
    yaw: float  # -1..1, times Conditions.perspective
    pitch: float
    roll: float


def _vehicle_for(text: str, scene_seed: int, state: str) -> _Vehicle:
    # Seeded by the plate, so every frame of a pass shows the same car and plate.
    rng = np.random.default_rng([zlib.crc32(text.encode()), scene_seed & 0xFFFFFFFF])
    look = pick_look(text, rng, state, None, None)
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
        blend_colour(
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
        plate = resize_plate(draw_plate(v.look), round(pw))
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
