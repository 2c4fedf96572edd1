"""Tests of the race pictures: track background, frames with car, radar beams and HUD, encodings."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from rewards_api.envs.render import (
    RADAR_ANGLES,
    encode_jpeg,
    render_frame,
    render_jpeg,
    save_track_png,
    track_background,
    track_png,
)
from rewards_api.envs.tracks import Track, builtin_track

NO_RADAR = [0.0] * len(RADAR_ANGLES)
OFF_SCREEN = (-1e6, -1e6)


@pytest.fixture(scope="module")
def track() -> Track:
    return builtin_track("training", 1)


def _pose(track: Track, reach: float = 100.0) -> tuple[float, float, float]:
    """The first pose along the track from which every radar beam stays ``reach`` px inside the picture."""
    w, h = track.size
    for index in range(20, track.num_waypoints):
        x, y, heading = track.pose_at(index)
        beams = [heading + math.radians(a) for a in RADAR_ANGLES]
        ends = [(x + reach * math.cos(b), y - reach * math.sin(b)) for b in beams]
        if all(5 <= ex <= w - 5 and 5 <= ey <= h - 5 for ex, ey in ends):
            return x, y, heading
    raise AssertionError(f"no pose on {track} keeps the radar beams in the picture")


def _colour_count(image: np.ndarray) -> int:
    packed = image.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)
    return len(np.unique(packed))


def _changed(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels where the frame differs from the background."""
    return np.any(frame != background, axis=2)


def _near(shape: tuple[int, ...], x: float, y: float, radius: float) -> np.ndarray:
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    return np.hypot(xx + 0.5 - x, yy + 0.5 - y) <= radius


@pytest.mark.parametrize(("mode", "number"), [("training", 1), ("evaluation", 1)])
def test_frame_shape_and_dtype(mode: str, number: int) -> None:
    t = builtin_track(mode, number)
    x, y, h = _pose(t)
    frame = render_frame(t, x, y, h, [50, 100, 150, 100, 50], {"step": 1})
    w, hh = t.size
    assert frame.shape == (hh, w, 3)
    assert frame.dtype == np.uint8
    bg = track_background(t)
    assert bg.shape == (hh, w, 3) and bg.dtype == np.uint8
    assert not bg.flags.writeable


def test_background_is_cached_and_deterministic(track: Track) -> None:
    assert track_background(track) is track_background(track)
    # A fresh, equal track (new object, so not in the cache) gives exactly the same picture.
    twin = Track(track.name, track.waypoints.copy(), track.width, track.size)
    np.testing.assert_array_equal(track_background(twin), track_background(track))


def test_background_draws_the_track(track: Track) -> None:
    bg = track_background(track).astype(int)
    assert _colour_count(bg) > 100  # textured, not flat fills
    asphalt = track.asphalt & (track.center_distance < track.half_width - 6)  # inside the kerbs
    grass = ~track.asphalt & (track.center_distance > track.half_width + 6)
    # Asphalt is grey and darker than the green grass around it.
    a, g = bg[asphalt].mean(axis=0), bg[grass].mean(axis=0)
    assert a.sum() < g.sum()
    assert abs(a[0] - a[1]) < 15 and abs(a[1] - a[2]) < 15
    assert g[1] > g[0] + 30 and g[1] > g[2] + 30
    # Red kerbs somewhere along the edge of the asphalt.
    edge = track.asphalt & (track.center_distance > track.half_width - 3)
    red = (bg[..., 0] > 180) & (bg[..., 1] < 90) & (bg[..., 2] < 90)
    assert (red & edge).sum() > 100
    assert not (red & grass).any()
    # A checkered start line at waypoint 0: both black and white pixels right there.
    x0, y0 = track.waypoints[0]
    at_start = _near(bg.shape, x0, y0, track.half_width) & track.asphalt
    assert (bg[at_start].max(axis=1) < 40).sum() > 30
    assert (bg[at_start].min(axis=1) > 230).sum() > 30


def test_frame_is_background_plus_car_beams_and_hud(track: Track) -> None:
    bg = track_background(track)
    x, y, h = _pose(track)
    frame = render_frame(track, x, y, h, [60, 80, 100, 80, 60], {"step": 12})
    assert _colour_count(frame) > _colour_count(track_background(track)) > 100
    changed = _changed(frame, bg)
    assert changed.any()
    # Nothing changes away from the car, its beams and the HUD corner.
    untouched = ~_near(bg.shape, x, y, 110)
    untouched[:150, :300] = False
    assert not (changed & untouched).any()
    assert np.array_equal(frame[track.asphalt & untouched], bg[track.asphalt & untouched])


def test_car_off_screen_without_hud_is_the_background(track: Track) -> None:
    frame = render_frame(track, *OFF_SCREEN, 0.0, [200] * len(RADAR_ANGLES))
    np.testing.assert_array_equal(frame, track_background(track))


def test_car_is_drawn_at_its_position_and_moves(track: Track) -> None:
    bg = track_background(track)
    xa, ya, h = _pose(track, 20)
    xb, yb, _ = _pose(track, 60)
    assert math.hypot(xb - xa, yb - ya) > 60
    fa = render_frame(track, xa, ya, h, NO_RADAR)
    fb = render_frame(track, xb, yb, h, NO_RADAR)
    around_a = _near(bg.shape, xa, ya, 6)
    around_b = _near(bg.shape, xb, yb, 6)
    assert _changed(fa, bg)[around_a].mean() > 0.9
    assert _changed(fb, bg)[around_b].mean() > 0.9
    # Having moved, the car is gone from where it was.
    assert not _changed(fb, bg)[around_a].any()
    assert not _changed(fa, bg)[around_b].any()
    # Roughly car-sized: more than a dot, much less than a big blob.
    assert 250 < _changed(fa, bg).sum() < 1000


def _helmet_offset(frame: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Centre of the driver's yellow helmet relative to (x, y), in pixels."""
    near = _near(frame.shape, x, y, 20)
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    yellow = near & (r > 200) & (g > 160) & (b < 120)
    assert yellow.sum() >= 4
    ys, xs = np.nonzero(yellow)
    return float(xs.mean() + 0.5 - x), float(ys.mean() + 0.5 - y)


def test_car_orientation_follows_heading(track: Track) -> None:
    x, y, _ = _pose(track)
    bg = track_background(track)
    boxes = {}
    for name, heading in {"east": 0.0, "north": math.pi / 2, "west": math.pi}.items():
        frame = render_frame(track, x, y, heading, NO_RADAR)
        ys, xs = np.nonzero(_changed(frame, bg))
        boxes[name] = (np.ptp(xs), np.ptp(ys))
        # The cockpit sits behind the middle of the car: opposite to where it faces.
        dx, dy = _helmet_offset(frame, x, y)
        fx, fy = math.cos(heading), -math.sin(heading)
        assert dx * fx + dy * fy < -1.0, name
    # Long along the heading, narrow across it.
    assert boxes["east"][0] > boxes["east"][1] + 8
    assert boxes["west"][0] > boxes["west"][1] + 8
    assert boxes["north"][1] > boxes["north"][0] + 8


def test_radar_beams_follow_their_directions(track: Track) -> None:
    bg = track_background(track)
    x, y, h = _pose(track)
    for i, angle in enumerate(RADAR_ANGLES):
        radars = [0.0] * len(RADAR_ANGLES)
        radars[i] = 90.0
        changed = _changed(render_frame(track, x, y, h, radars), bg)
        a = h + math.radians(angle)
        for d in (30, 60, 90):
            px, py = x + d * math.cos(a), y - d * math.sin(a)
            assert changed[_near(bg.shape, px, py, 1.5)].any(), (angle, d)
        # Nothing is drawn on the opposite side of the car beyond the car itself.
        px, py = x - 60 * math.cos(a), y + 60 * math.sin(a)
        assert not changed[_near(bg.shape, px, py, 3)].any(), angle


def test_radar_colour_encodes_distance(track: Track) -> None:
    x, y, h = _pose(track)
    ends = {}
    for d in (20.0, 190.0):
        frame = render_frame(track, x, y, h, [0, 0, d, 0, 0]).astype(int)
        ex, ey = int(x + d * math.cos(h)), int(y - d * math.sin(h))
        ends[d] = frame[ey, ex]
    assert ends[20.0][0] > ends[20.0][1]  # near: red
    assert ends[190.0][1] > ends[190.0][0]  # far: green


def test_hud_changes_the_top_left_corner(track: Track) -> None:
    bg = track_background(track)
    plain = render_frame(track, *OFF_SCREEN, 0.0, NO_RADAR)
    a = render_frame(track, *OFF_SCREEN, 0.0, NO_RADAR, {"step": 12, "score": 11.0})
    b = render_frame(track, *OFF_SCREEN, 0.0, NO_RADAR, {"step": 13, "score": 123.456})
    corner = (slice(0, 120), slice(0, 250))
    assert np.array_equal(plain, bg)
    assert _changed(a, bg)[corner].mean() > 0.1
    assert not _changed(a, bg)[200:, 300:].any()
    assert _changed(a, b)[corner].any()
    # The panel darkens the picture behind it.
    assert a[10:40, 10:60].mean() < bg[10:40, 10:60].mean()


def test_car_partly_or_far_outside_the_image(track: Track) -> None:
    w, h = track.size
    bg = track_background(track)
    edge = render_frame(track, -5.0, h / 2, math.pi, [200] * 5)
    assert _changed(edge, bg)[:, :12].any()  # the visible part of the car is drawn
    for x, y in [(w + 3.0, h + 3.0), (-1e9, 1e9), (1e300, 0.0), (float("nan"), 5.0)]:
        frame = render_frame(track, x, y, 1.0, [0, 50, 200, 1e6, float("nan")], {"x": x})
        assert frame.shape == (h, w, 3)


def test_radars_must_match_the_beam_count(track: Track) -> None:
    with pytest.raises(ValueError, match="radar"):
        render_frame(track, 100.0, 100.0, 0.0, [1.0, 2.0])


def test_encode_jpeg_decodes_to_the_frame(track: Track) -> None:
    x, y, h = _pose(track)
    frame = render_frame(track, x, y, h, [60, 80, 100, 80, 60], {"step": 1})
    data = encode_jpeg(frame, quality=85)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG"
    assert decoded.size == track.size
    diff = np.abs(np.asarray(decoded.convert("RGB"), dtype=int) - frame.astype(int))
    assert diff.mean() < 6
    assert len(encode_jpeg(frame, quality=30)) < len(data)


def test_track_png_decodes_to_the_background(track: Track, tmp_path) -> None:
    data = track_png(track)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = Image.open(io.BytesIO(data))
    assert decoded.size == track.size
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), track_background(track))
    path = tmp_path / "track.png"
    save_track_png(track, path)
    assert path.read_bytes() == data


def test_render_jpeg_encodes_the_same_frame(track: Track) -> None:
    x, y, heading = track.pose_at(40)
    hud = {"episode": 3, "score": 12.5}
    frame = render_frame(track, x, y, heading, [50.0, 80.0, 120.0, 80.0, 50.0], hud)
    data = render_jpeg(track, x, y, heading, [50.0, 80.0, 120.0, 80.0, 50.0], hud, quality=90)
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
    assert data[:2] == b"\xff\xd8" and decoded.shape == frame.shape
    assert np.abs(decoded - frame.astype(np.int16)).mean() < 4
