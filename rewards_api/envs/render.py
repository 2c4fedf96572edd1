"""Pictures of a race: the track background, and frames with the car, its radar beams and a HUD.

Everything is drawn in image pixels with the conventions of :mod:`rewards_api.envs.tracks`: ``x`` to
the right, ``y`` *down*, ``heading`` in radians counter-clockwise as seen on screen (0 = east), so
the car faces ``(cos h, -sin h)``. The five radar beams point at ``RADAR_ANGLES`` degrees from the
heading (negative = clockwise = to the car's right).

The background is computed once per track (numpy) and cached; a frame is a copy of it with a few
small things drawn on top with Pillow, so rendering stays cheap (hundreds of frames per second).
"""

from __future__ import annotations

import io
import math
import numbers
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .radar import RADAR_ANGLES, RADAR_RANGE
from .tracks import Track

CAR_LENGTH = 30
"""Length of the car sprite on screen, in pixels."""

CAR_WIDTH = 16
"""Width of the car sprite on screen, in pixels."""

# ----- palette ------------------------------------------------------------------------------------
_GRASS = np.array([74, 148, 62], dtype=np.float32)
_GRASS_EDGE = np.array([52, 104, 44], dtype=np.float32)  # shadow just outside the asphalt
_ASPHALT = np.array([78, 80, 86], dtype=np.float32)
_KERB_RED = np.array([214, 40, 40], dtype=np.float32)
_KERB_WHITE = np.array([240, 240, 236], dtype=np.float32)
_LINE_WHITE = np.array([232, 232, 228], dtype=np.float32)

_KERB_WIDTH = 4.0  # pixels of kerb inside the asphalt edge
_KERB_BLOCK = 9.0  # length of one red or white kerb block along the track, in pixels
_KERB_MAX_RADIUS = 160.0  # bends tighter than this get red/white kerbs; straights a white edge line
_EDGE_LINE = 1.6  # width of the white edge line on straights, in pixels
_DASH = 14.0  # centre-line dash period along the track (half painted), in pixels
_CHECKER = 5.0  # side of one start-line checker square, in pixels

_SS = 4  # supersampling factor of the car sprite


# ----- background ---------------------------------------------------------------------------------
def _smooth_noise(shape: tuple[int, int], cell: int, seed: int) -> np.ndarray:
    """Deterministic value noise in [-1, 1]: a coarse random grid, bilinearly interpolated."""
    h, w = shape
    rng = np.random.default_rng(seed)
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
    ys = np.arange(h, dtype=np.float32) / cell
    xs = np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(np.int32), xs.astype(np.int32)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _arc_position(track: Track) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel near the track: nearest waypoint index (>= 0), arc length from the start line,
    distance across the centre line (perpendicular, unlike the waypoint-based
    ``center_distance``), and a mask of the pixels where these are defined."""
    nearest = track.nearest_waypoint
    valid = nearest >= 0
    idx = np.where(valid, nearest, 0)
    h, w = nearest.shape
    px = np.arange(w, dtype=np.float64)[None, :] + 0.5 - track.waypoints[idx, 0]
    py = np.arange(h, dtype=np.float64)[:, None] + 0.5 - track.waypoints[idx, 1]
    seg = track.segments[idx]
    seg_len = np.maximum(track.segment_lengths[idx], 1e-9)
    along = (px * seg[..., 0] + py * seg[..., 1]) / seg_len
    arc = (track.arc_starts[idx] + along) % track.length
    across = np.abs(px * seg[..., 1] - py * seg[..., 0]) / seg_len
    return idx, arc, across, valid


@lru_cache(maxsize=4)
def _textures(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Grass colour (H, W, 3) and asphalt brightness (H, W) textures for an image size.

    Smooth value noise from fixed seeds (the same every run); no per-pixel grain, which would make
    the PNG and every JPEG frame several times larger without looking any better.
    """
    w, h = size
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    stripes = np.where(((xs + 0.35 * ys) // 28) % 2 == 0, 1.0, -1.0).astype(np.float32)
    patches = _smooth_noise((h, w), 48, seed=1) + 0.5 * _smooth_noise((h, w), 17, seed=2)
    tufts = _smooth_noise((h, w), 4, seed=3)
    shade = 1.0 + 0.045 * stripes + 0.05 * patches + 0.025 * tufts
    grass = _GRASS[None, None, :] * shade[..., None]
    asphalt = 1.0 + 0.03 * _smooth_noise((h, w), 40, seed=5)
    asphalt += 0.02 * _smooth_noise((h, w), 3, seed=4)
    grass.setflags(write=False)
    asphalt.setflags(write=False)
    return grass, asphalt


def _compute_background(track: Track) -> np.ndarray:
    w, h = track.size
    dist = np.asarray(track.center_distance, dtype=np.float32)
    asphalt = np.asarray(track.asphalt, dtype=bool)
    hw = float(track.half_width)
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    grass_tex, asphalt_tex = _textures((w, h))

    # Grass: mowing stripes and soft patches; a soft dark rim along the asphalt edge.
    rim = np.clip(1.0 - (dist - hw) / 3.0, 0.0, 1.0) * (~asphalt)
    img = grass_tex + (_GRASS_EDGE - grass_tex) * (0.6 * rim)[..., None]

    # Asphalt: exactly the physics mask, slightly lighter along the racing middle.
    middle = np.clip(1.0 - dist / max(hw, 1.0), 0.0, 1.0)
    tone = asphalt_tex * (0.93 + 0.09 * middle)
    img = np.where(asphalt[..., None], _ASPHALT[None, None, :] * tone[..., None], img)

    idx, arc, across, valid = _arc_position(track)
    on = asphalt & valid

    # Kerbs on bends, a white edge line on straights.
    radii = track.curvature_radii(window=4)
    # Widen the "bend" set a little so kerbs start before and end after each corner.
    bend = radii < _KERB_MAX_RADIUS
    bend = bend | np.roll(bend, 3) | np.roll(bend, -3)
    in_bend = bend[idx]
    edge_band = on & (dist > hw - _KERB_WIDTH)
    kerb = edge_band & in_bend
    red = ((arc // _KERB_BLOCK) % 2 == 0)
    img[kerb & red] = _KERB_RED
    img[kerb & ~red] = _KERB_WHITE
    # A slightly darker inner border on kerbs makes them read as raised.
    kerb_inner = kerb & (dist <= hw - _KERB_WIDTH + 1.0)
    img[kerb_inner] *= 0.8
    line = on & ~in_bend & (dist > hw - _KERB_WIDTH) & (dist <= hw - _KERB_WIDTH + _EDGE_LINE + 0.5)
    img[line] = _LINE_WHITE * 0.95

    # Dashed centre line, painted softly.
    dash = on & (across < 1.0) & ((arc % _DASH) < _DASH / 2)
    img[dash] = img[dash] * 0.45 + _LINE_WHITE * 0.55

    # Checkered start/finish line across the track at waypoint 0.
    x0, y0 = track.waypoints[0]
    sx, sy = track.segments[0] / max(float(track.segment_lengths[0]), 1e-9)
    px, py = xs + 0.5 - x0, ys + 0.5 - y0
    u = px * sx + py * sy  # along the track
    v = -px * sy + py * sx  # across the track
    near_start = (np.abs(u) < 2 * _CHECKER) & (np.abs(v) <= hw + 1) & asphalt
    checker = ((np.floor(u / _CHECKER) + np.floor(v / _CHECKER)) % 2 == 0)
    img[near_start & checker] = (245, 245, 245)
    img[near_start & ~checker] = (22, 22, 26)
    # Starting-grid marks: a few white "brackets" behind the line on alternating sides.
    for k, side in enumerate((1, -1, 1, -1)):
        back = -(22 + 18 * k)
        grid = (
            asphalt
            & (np.abs(u - back) < 1.2)
            & (side * v > 4)
            & (side * v < hw - _KERB_WIDTH - 4)
        )
        img[grid] = img[grid] * 0.3 + _LINE_WHITE * 0.7

    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def _background(track: Track) -> tuple[np.ndarray, Image.Image]:
    arr = _compute_background(track)
    return arr, Image.fromarray(arr, "RGB")


def track_background(track: Track) -> np.ndarray:
    """The track's background picture: (H, W, 3) uint8, read-only, computed once per track.

    Textured grass, asphalt exactly where ``track.asphalt`` is True (the physics mask), red/white
    kerbs on the bends, white edge lines on the straights, a dashed centre line and a checkered
    start/finish line across the track at waypoint 0. Deterministic: the same every run.
    """
    return _background(track)[0]


def track_png(track: Track) -> bytes:
    """The track's background picture (:func:`track_background`) encoded as PNG."""
    buf = io.BytesIO()
    _background(track)[1].save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def save_track_png(track: Track, path: str | Path) -> None:
    """Write the track's background picture to ``path`` as a PNG file."""
    Path(path).write_bytes(track_png(track))


# ----- the car sprite -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _car_hires() -> Image.Image:
    """The car at ``_SS`` times screen size, facing east (right), centred on a square canvas."""
    s = _SS
    side = 40 * s  # room for any rotation of a 30 x 16 car, plus its shadow
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    c = side / 2
    length, width = CAR_LENGTH * s, CAR_WIDTH * s
    left, right = c - length / 2, c + length / 2
    top, bottom = c - width / 2, c + width / 2

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0, y0, x1, y1)

    tyre = (24, 24, 28, 255)
    # Wheels: rear ones wider, poking out beside the body.
    wl, ww = 6.5 * s, 4 * s
    for wx in (left + 3.5 * s, right - 10 * s):
        d.rounded_rectangle(box(wx, top, wx + wl, top + ww), radius=s, fill=tyre)
        d.rounded_rectangle(box(wx, bottom - ww, wx + wl, bottom), radius=s, fill=tyre)
    body = (235, 90, 20, 255)
    dark = (150, 50, 10, 255)
    # Rear wing.
    d.rounded_rectangle(box(left, top + 2 * s, left + 3 * s, bottom - 2 * s), radius=s, fill=dark)
    # Main body: a tapered hull, drawn as a polygon.
    hull = [
        (left + 2 * s, c - 4.5 * s), (left + 12 * s, c - 5 * s), (right - 10 * s, c - 4 * s),
        (right - 1 * s, c - 1.6 * s), (right, c), (right - 1 * s, c + 1.6 * s),
        (right - 10 * s, c + 4 * s), (left + 12 * s, c + 5 * s), (left + 2 * s, c + 4.5 * s),
    ]
    d.polygon(hull, fill=body, outline=dark, width=max(1, s // 2))
    # Side pods.
    d.rounded_rectangle(box(left + 9 * s, c - 6 * s, left + 17 * s, c + 6 * s), radius=2 * s,
                        fill=body, outline=dark, width=max(1, s // 2))
    # Front wing.
    d.rounded_rectangle(box(right - 4 * s, top + 1.5 * s, right - 1.5 * s, bottom - 1.5 * s),
                        radius=s, fill=dark)
    # Racing stripe.
    stripe = (255, 235, 200, 255)
    d.rectangle(box(left + 3 * s, c - 0.9 * s, right - 2 * s, c + 0.9 * s), fill=stripe)
    # Cockpit and driver's helmet, behind the middle of the car as on a real single-seater.
    d.ellipse(box(left + 8 * s, c - 3 * s, left + 16 * s, c + 3 * s), fill=(30, 34, 48, 255))
    d.ellipse(box(left + 9.5 * s, c - 2 * s, left + 13.5 * s, c + 2 * s), fill=(250, 210, 40, 255))
    return img


@lru_cache(maxsize=360)
def _car_sprite(degrees: int) -> Image.Image:
    """The car rotated ``degrees`` counter-clockwise, with a soft shadow, at screen size (RGBA)."""
    hi = _car_hires().rotate(degrees, resample=Image.Resampling.BICUBIC)
    alpha = hi.getchannel("A")
    shadow = Image.new("RGBA", hi.size, (0, 0, 0, 0))
    shadow.putalpha(alpha.point(lambda a: a * 90 // 255))
    canvas = Image.new("RGBA", hi.size, (0, 0, 0, 0))
    canvas.alpha_composite(shadow, (2 * _SS, 2 * _SS))
    canvas.alpha_composite(hi)
    side = hi.size[0] // _SS
    return canvas.resize((side, side), Image.Resampling.BOX)


# ----- frames -------------------------------------------------------------------------------------
def _radar_colour(distance: float) -> tuple[int, int, int]:
    """Green when the beam reaches far, through yellow, to red when a wall is near."""
    t = min(max(distance / RADAR_RANGE, 0.0), 1.0)
    if t < 0.5:
        k = t / 0.5
        return (255, int(60 + 170 * k), 40)
    k = (t - 0.5) / 0.5
    return (int(255 - 175 * k), int(230 + 10 * k), int(40 + 50 * k))


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _format_value(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        if v == int(v) and abs(v) < 1e6:
            return f"{v:.1f}"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}" if abs(v) >= 0.001 else f"{v:.3g}"
    return str(value)


_HUD_FONT_SIZE = 14
_HUD_PAD = 7
_HUD_LINE = 18


_HUD_SHADE = (12, 14, 22)
_HUD_OPACITY = 0.62


@lru_cache(maxsize=256)
def _hud_overlay(rows: tuple[tuple[str, str], ...]) -> Image.Image:
    """The HUD panel for these rows: a translucent dark box with the text, as an RGBA overlay.

    Cached by content: rasterizing the glyphs is the costly part of a frame, and a live HUD repeats.
    """
    font = _font(_HUD_FONT_SIZE)
    label_w = max(font.getlength(k) for k, _ in rows)
    value_w = max(font.getlength(v) for _, v in rows)
    gap = 12
    box_w = int(_HUD_PAD * 2 + label_w + gap + value_w + 1)
    box_h = _HUD_PAD * 2 + _HUD_LINE * len(rows) - 3
    overlay = Image.new("RGBA", (box_w, box_h), (*_HUD_SHADE, round(255 * _HUD_OPACITY)))
    d = ImageDraw.Draw(overlay)
    d.rectangle((0, 0, box_w - 1, box_h - 1), outline=(90, 96, 110, 255))
    for i, (label, value) in enumerate(rows):
        ty = _HUD_PAD + i * _HUD_LINE
        d.text((_HUD_PAD, ty), label, font=font, fill=(170, 178, 192, 255))
        d.text((box_w - _HUD_PAD - font.getlength(value), ty), value, font=font, fill=(255, 255, 255, 255))
    return overlay


def _draw_hud(frame: Image.Image, hud: Mapping[str, object]) -> None:
    rows = tuple((str(k), _format_value(v)) for k, v in hud.items())
    if not rows:
        return
    overlay = _hud_overlay(rows)
    x0 = y0 = 8
    box_w = min(overlay.width, frame.width - x0)
    box_h = min(overlay.height, frame.height - y0)
    if box_w <= 0 or box_h <= 0:
        return
    region = frame.crop((x0, y0, x0 + box_w, y0 + box_h)).convert("RGBA")
    region.alpha_composite(overlay.crop((0, 0, box_w, box_h)))
    frame.paste(region.convert("RGB"), (x0, y0))


def _visible(xs: Sequence[float], ys: Sequence[float], w: int, h: int, pad: float) -> bool:
    return min(xs) < w + pad and max(xs) > -pad and min(ys) < h + pad and max(ys) > -pad


def render_frame(
    track: Track,
    x: float,
    y: float,
    heading: float,
    radars: Sequence[float] | np.ndarray,
    hud: Mapping[str, object] | None = None,
) -> np.ndarray:
    """One frame of the race: (H, W, 3) uint8 (see :func:`render_image` for what it shows)."""
    return np.asarray(render_image(track, x, y, heading, radars, hud))


def render_jpeg(
    track: Track,
    x: float,
    y: float,
    heading: float,
    radars: Sequence[float] | np.ndarray,
    hud: Mapping[str, object] | None = None,
    quality: int = 80,
) -> bytes:
    """One frame of the race as JPEG bytes, encoded straight from the drawing (no array round trip)."""
    buffer = io.BytesIO()
    render_image(track, x, y, heading, radars, hud).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def render_image(
    track: Track,
    x: float,
    y: float,
    heading: float,
    radars: Sequence[float] | np.ndarray,
    hud: Mapping[str, object] | None = None,
) -> Image.Image:
    """One frame of the race, as an RGB Pillow image.

    The track background, the radar beams (one per angle of ``RADAR_ANGLES``, coloured green when
    the reading is long and red when a wall is near, with a dot at each end), the car at ``(x, y)``
    pixels facing ``heading`` (radians, counter-clockwise on screen, 0 = east), and, when ``hud`` is
    given, a small panel in the top-left corner listing its ``label: value`` pairs. A car partly or
    wholly outside the image is clipped, never an error.
    """
    radars = [float(r) for r in np.asarray(radars, dtype=np.float64).ravel()]
    if len(radars) != len(RADAR_ANGLES):
        raise ValueError(f"expected {len(RADAR_ANGLES)} radar distances, got {len(radars)}")
    frame = _background(track)[1].copy()
    w, h = frame.size
    x, y, heading = float(x), float(y), float(heading)
    # Skip a car that is nowhere near the picture: that keeps coordinates in a range Pillow's
    # integer maths is happy with, and it would be invisible anyway.
    finite = math.isfinite(x) and math.isfinite(y) and math.isfinite(heading)
    if finite and _visible([x], [y], w, h, RADAR_RANGE + 4 * CAR_LENGTH):
        draw = ImageDraw.Draw(frame)
        for angle, dist in zip(RADAR_ANGLES, radars, strict=True):
            if not math.isfinite(dist):
                continue
            dist = min(max(dist, 0.0), 4 * RADAR_RANGE)
            a = heading + math.radians(angle)
            ex, ey = x + dist * math.cos(a), y - dist * math.sin(a)
            colour = _radar_colour(dist)
            draw.line((x, y, ex, ey), fill=colour, width=1)
            draw.ellipse((ex - 2.5, ey - 2.5, ex + 2.5, ey + 2.5), fill=colour,
                         outline=(20, 20, 20))
        sprite = _car_sprite(round(math.degrees(heading)) % 360)
        half = sprite.width / 2
        left, top = round(x - half), round(y - half)
        if left < w and top < h and left + sprite.width > 0 and top + sprite.height > 0:
            frame.paste(sprite, (left, top), sprite)
    if hud:
        _draw_hud(frame, hud)
    return frame


def encode_jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    """Encode an (H, W, 3) uint8 frame as JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB").save(
        buf, format="JPEG", quality=int(quality)
    )
    return buf.getvalue()
