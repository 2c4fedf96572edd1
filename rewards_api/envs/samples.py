"""Sample ``params`` for checking a reward function when it is written: real poses on the built-in tracks.

A function is called with these before it is accepted, so a problem that real driving would hit at once
(a ``KeyError``, a division by a radar reading of 0 off the track, a non-number) is refused with its line
instead of failing a training later. The poses: on the centre line at four places, either side of it, near
the edge, and off the track (``is_alive`` False), on every built-in track, a few steps into an episode;
each as the classic car and as the racing car (at rest, at speed, steering, the wrong way round), since
the check does not know which car the function will drive.

Building a track's radar maps (:func:`rewards_api.envs.radar.radar_maps`) takes about a second, too slow
for a check; the few readings needed here are measured directly, with the same beams, sample spacing,
refinement and interpolation, on the same distance-to-centre-line values, so they match the simulator's.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import numpy as np

from .classic import (
    LEFT,
    RIGHT,
    SPEED,
    STRAIGHT,
    WHEEL_OFFSETS,
    classic_params_dicts,
    default_step_limit,
    params_dicts,
)
from .physics import MAX_STEERING
from .radar import HEADING_X, HEADING_Y, NUM_HEADINGS, RADAR_OFFSETS, RADAR_RANGE, RADAR_SAMPLE, heading_index
from .reward import RewardFunction, RewardFunctionError
from .tracks import Track, builtin_track

__all__ = ["CHECK_TRACKS", "call_on_samples", "check_samples", "longest_episode", "track_samples"]

CHECK_TRACKS: tuple[tuple[str, int], ...] = (("training", 1), ("training", 2), ("training", 3),
                                             ("evaluation", 1))
"""The tracks whose poses a function is checked on: every built-in track."""

# (what, where along the lap as a fraction, offset from the centre line as a fraction of the half width,
#  positive to the left, the action just taken, steps into the episode)
_POSES: tuple[tuple[str, float, float, int, int], ...] = (
    ("on the centre line at the start", 0.0, 0.0, STRAIGHT, 1),
    ("on the centre line a quarter of the way round", 0.25, 0.0, LEFT, 2),
    ("on the centre line half way round", 0.5, 0.0, RIGHT, 3),
    ("on the centre line three quarters of the way round", 0.75, 0.0, STRAIGHT, 4),
    ("left of the centre line", 0.35, 0.6, LEFT, 5),
    ("right of the centre line", 0.65, -0.6, RIGHT, 3),
    ("near the edge of the track", 0.85, 0.9, STRAIGHT, 2),
    ("that has just left the track (is_alive False)", 0.125, -1.3, RIGHT, 5),
)
_RACING: tuple[tuple[float, float, bool], ...] = (
    (0.0, 0.0, False), (1.5, MAX_STEERING, False), (2.5, -15.0, False), (4.0, 0.0, False),
    (1.0, 15.0, False), (3.0, -MAX_STEERING, False), (0.5, 0.0, True), (2.0, -5.0, False),
)
"""(speed m/s, steering degrees, facing the wrong way) of the racing car at each of ``_POSES``."""
_FAR = np.float32(1e4)
_GRID_BAND = 30.0  # as Track._grid_band: distances further than this beyond the edge count as far


def _margins(track: Track, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """``half_width - distance to the nearest waypoint`` of pixels ``(px, py)``, as the track's grids give it
    (pixel centres, float32, "far" beyond the band)."""
    wp = track.waypoints
    dx = (px.astype(np.float64) + 0.5)[:, None] - wp[None, :, 0]
    dy = (py.astype(np.float64) + 0.5)[:, None] - wp[None, :, 1]
    nearest = np.sqrt(dx * dx + dy * dy).min(axis=1).astype(np.float32)
    nearest = np.where(nearest <= track.half_width + _GRID_BAND, nearest, _FAR)
    return (track.half_width - nearest).astype(np.float32)


def _beam(track: Track, cx: np.float32, cy: np.float32, k: int) -> float:
    """Distance from pixel ``(cx, cy)`` to the grass along heading ``k``, as radar_maps measures it."""
    w, h = track.size
    ux, uy = np.float32(HEADING_X[k]), np.float32(HEADING_Y[k])

    def margins(t: np.ndarray) -> np.ndarray:
        px = np.clip(cx + ux * t, 0, w - 1).astype(np.int32)
        py = np.clip(cy + uy * t, 0, h - 1).astype(np.int32)
        return _margins(track, px, py)

    samples = np.arange(RADAR_SAMPLE, RADAR_RANGE + RADAR_SAMPLE / 2, RADAR_SAMPLE, dtype=np.float32)
    hits = np.flatnonzero(margins(samples) < 0)
    if not len(hits):
        return RADAR_RANGE
    t = samples[hits[0]]
    along = (t - np.float32(RADAR_SAMPLE)) + np.arange(1.0, RADAR_SAMPLE + 0.5, 1.0, dtype=np.float32)
    m = margins(along)
    first = int((m < 0).argmax())
    m0 = m[first - 1] if first > 0 else margins(np.array([t - RADAR_SAMPLE], dtype=np.float32))[0]
    distance = along[first] - 1.0 + m0 / max(m0 - m[first], 1e-6)
    return float(np.clip(np.rint(distance), 0, RADAR_RANGE).astype(np.uint8))


def _radars(track: Track, x: float, y: float, heading: int) -> list[float]:
    """The five radar readings of a car at ``(x, y)`` facing heading index ``heading``."""
    w, h = track.size
    if not (0 <= x < w and 0 <= y < h):
        return [0.0] * len(RADAR_OFFSETS)
    ix, iy = int(min(max(x + 0.5, 0), w - 1)), int(min(max(y + 0.5, 0), h - 1))
    if _margins(track, np.array([ix]), np.array([iy]))[0] < 0:  # on grass: the maps read 0
        return [0.0] * len(RADAR_OFFSETS)
    return [_beam(track, np.float32(ix), np.float32(iy), int((heading + o) % NUM_HEADINGS))
            for o in RADAR_OFFSETS]


def _locate(track: Track, x: float, y: float) -> tuple[float, bool, int]:
    """Distance from the centre line, whether left of it, and the segment behind the car (as the
    simulator projects a car onto the two segments around its nearest waypoint)."""
    wp, seg, n = track.waypoints, track.segments, track.num_waypoints
    near = int(np.hypot(wp[:, 0] - x, wp[:, 1] - y).argmin())
    best: tuple[float, int, float] | None = None
    for segment in ((near - 1) % n, near):
        sx, sy = seg[segment]
        rx, ry = x - wp[segment, 0], y - wp[segment, 1]
        along = min(max((rx * sx + ry * sy) / (sx * sx + sy * sy), 0.0), 1.0)
        ox, oy = rx - along * sx, ry - along * sy
        d2 = ox * ox + oy * oy
        if best is None or d2 < best[0]:
            best = (d2, segment, sx * oy - sy * ox)
    assert best is not None
    d2, segment, cross = best
    return float(np.sqrt(d2)), bool(cross < 0), segment


def _wheels_on_track(track: Track, x: float, y: float, hx: float, hy: float) -> bool:
    """Whether the four wheels of a car at ``(x, y)`` heading ``(hx, hy)`` are on the asphalt."""
    w, h = track.size
    for forward, leftward in WHEEL_OFFSETS:
        wx, wy = x + forward * hx + leftward * hy, y + forward * hy - leftward * hx
        if not (0 <= wx < w and 0 <= wy < h) or track.center_distance[int(wy), int(wx)] > track.half_width:
            return False
    return True


@lru_cache(maxsize=8)
def _track_columns(mode: str, number: int) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
    """Labels and per-pose values of one built-in track's poses: the classic car's columns
    (as :func:`classic_params_dicts` takes them), then the racing car's extra values."""
    track = builtin_track(mode, number)
    n = track.num_waypoints
    labels, rows = [], []
    for (what, where, offset, action, steps), racing in zip(_POSES, _RACING, strict=True):
        i = round(where * n) % n
        sx, sy = track.segments[i]
        length = float(np.hypot(sx, sy))
        shift = offset * track.half_width
        x = float(track.waypoints[i, 0] + shift * sy / length)  # (sy, -sx) points to the left of travel
        y = float(track.waypoints[i, 1] - shift * sx / length)
        heading = heading_index(float(np.arctan2(-sy, sx)))
        distance, left, segment = _locate(track, x, y)
        alive = distance <= track.half_width
        progress = min(steps * SPEED * 100.0 / track.length, 100.0)
        hx, hy = float(HEADING_X[heading]), float(HEADING_Y[heading])
        labels.append(f"a car {what} on track {track.name}")
        rows.append((alive, tuple(_radars(track, x, y, heading)), action, x, y, heading, progress, steps,
                     distance, left, segment, _wheels_on_track(track, x, y, hx, hy), False, racing))
    return tuple(labels), tuple(rows)


def track_samples(mode: str, number: int) -> list[tuple[str, dict[str, Any]]]:
    """``(label, params)`` for each sample pose on a built-in track, as the classic car and as the racing
    car; the dicts are new on every call (a reward function may change the dict it is given)."""
    labels, rows = _track_columns(mode, number)
    track = builtin_track(mode, number)
    columns = [list(column) for column in zip(*(row[:13] for row in rows), strict=True)]
    columns[1] = [list(radars) for radars in columns[1]]
    classic = classic_params_dicts(*columns, track)
    racing = []
    for label, row in zip(labels, rows, strict=True):
        alive, radars, _, x, y, heading, progress, steps, distance, left, segment, wheels, _, extra = row
        speed, steering, reversed_ = extra
        degrees = heading * 15.0 - (360.0 if heading * 15.0 > 180.0 else 0.0)
        if reversed_:
            degrees = degrees - 180.0 if degrees > 0 else degrees + 180.0
        params = params_dicts(
            [alive], [list(radars)], [0 if steering == 0 else (-1 if steering > 0 else 1)],
            [abs(steering) / 2], [steering], [x], [y], [degrees], [speed], [progress], [steps],
            [distance], [left], [segment], [wheels], [reversed_], track,
        )[0]
        racing.append((label.replace("a car ", f"a racing car at {speed:g} m/s ", 1), params))
    return list(zip(labels, classic, strict=True)) + racing


def check_samples() -> list[tuple[str, dict[str, Any]]]:
    """``(label, params)`` for every sample pose on every track of :data:`CHECK_TRACKS`."""
    return [sample for mode, number in CHECK_TRACKS for sample in track_samples(mode, number)]


def longest_episode() -> int:
    """The most steps an episode can have on the tracks of :data:`CHECK_TRACKS` (their default limit, for
    either car)."""
    from .racing import racing_step_limit

    return max(max(default_step_limit(track), racing_step_limit(track))
               for track in (builtin_track(mode, number) for mode, number in CHECK_TRACKS))


def call_on_samples(fn: RewardFunction, episode_budget: float) -> None:
    """Call a reward function on every sample of :func:`check_samples`; errors name the sample.

    A function whose calls cost so much CPU time that an episode of :func:`longest_episode` steps would
    take more than ``episode_budget`` seconds is refused here, rather than when it fails a training.
    Raises :class:`RewardFunctionError`.
    """
    steps, spent = longest_episode(), 0.0
    for count, (label, params) in enumerate(check_samples(), start=1):
        started = time.process_time()
        try:
            fn.one(params)
        except RewardFunctionError as exc:
            raise RewardFunctionError(f"{exc.problem}, for {label}", exc.line, exc.code) from exc
        spent += time.process_time() - started
        if spent / count * steps > episode_budget:
            raise RewardFunctionError(
                f"a call takes about {spent / count * 1000:.0f} ms of CPU time, so an episode of up to "
                f"{steps} steps would take about {spent / count * steps:.0f} s, more than the "
                f"{episode_budget:g} s an episode may use: make reward_function faster, it is called for "
                "every car at every step"
            )
