"""The reference lap: the fastest lap the racing car's physics allows round a track, from a standing start.

It is what learners race against ("1.18x reference"). Two lines round the track are timed and the
faster one is the reference:

- the centre line;
- a racing line: the centre line pulled tight like a rubber band (each point moved, many times over,
  towards the middle of its neighbours, along the track's normal), but never closer than
  ``LINE_MARGIN`` px to an edge, so the car's wheels stay on the asphalt. It cuts the corners, which
  makes bends wider and the lap shorter.

Along a line, the speed profile (:func:`~rewards_api.envs.physics.speed_profile`) is the cornering speed
of every bend (``GRIP``), accelerating out of bends (``ACCELERATION``) and braking into them
(``BRAKING``), with the car's top speed, from rest at the start. A learner's car can beat it a little
(the racing line is a good line, not a proven optimum), but not by much: a ratio below about 0.95 would
mean the physics or the line is wrong.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .map_cache import cached_array, digest
from .physics import AXLE_TRACK, PIXELS_PER_METRE, profile_time, speed_profile
from .tracks import Track

__all__ = ["LINE_MARGIN", "RADIUS_WINDOW", "line_radii", "racing_line", "reference_lap_time"]

LINE_MARGIN = AXLE_TRACK * PIXELS_PER_METRE / 2 + 2.0
"""Pixels the racing line keeps from the track's edges: half the car's width and 2 px."""
LINE_ITERATIONS = 3000
"""Rounds of pulling the racing line tight."""
RADIUS_WINDOW = 3
"""Points either side (±15 px) between which a bend's radius is measured."""


@lru_cache(maxsize=64)
def racing_line(track: Track) -> np.ndarray:
    """(n, 2) points of the racing line, one beside each waypoint (read-only). Pulling it tight takes
    0.2 s: it is kept in the disk cache (:mod:`rewards_api.envs.map_cache`) with the radar maps."""
    key = digest(track.waypoints, track.width, LINE_MARGIN, LINE_ITERATIONS)
    return cached_array("line", key, track.waypoints.shape, np.float64, lambda: _pull_tight(track))


def _pull_tight(track: Track) -> np.ndarray:
    centre = track.waypoints
    unit = track.segments / track.segment_lengths[:, None]
    tangent = unit + np.roll(unit, 1, axis=0)  # at each waypoint, between the segments either side
    tangent /= np.hypot(tangent[:, 0], tangent[:, 1])[:, None]
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    reach = max(track.half_width - LINE_MARGIN, 0.0)
    offset = np.zeros(len(centre))
    for _ in range(LINE_ITERATIONS):
        points = centre + offset[:, None] * normal
        middle = 0.5 * (np.roll(points, 1, axis=0) + np.roll(points, -1, axis=0))
        offset = np.clip(((middle - centre) * normal).sum(axis=1), -reach, reach)
    return centre + offset[:, None] * normal


def line_radii(points: np.ndarray, window: int = RADIUS_WINDOW) -> np.ndarray:
    """The radius (px) of the circle through each point and the points ``window`` before and after it."""
    a, b, c = np.roll(points, window, axis=0), points, np.roll(points, -window, axis=0)
    ab, bc, ca = (np.hypot(*(q - p).T) for p, q in ((a, b), (b, c), (c, a)))
    cross = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cross > 1e-9, ab * bc * ca / (2 * cross), np.inf)


@lru_cache(maxsize=64)
def _lines(track: Track) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(radii, spacing) of the centre line and of the racing line."""
    found = []
    for points in (track.waypoints, racing_line(track)):
        spacing = np.hypot(*(np.roll(points, -1, axis=0) - points).T)
        found.append((line_radii(points), spacing))
    return tuple(found)


@lru_cache(maxsize=256)
def reference_lap_time(track: Track, start: int = 0) -> float:
    """Seconds of the fastest lap found from rest at waypoint ``start`` (the start line: 0)."""
    if not 0 <= start < track.num_waypoints:
        raise ValueError(f"start must be a waypoint index 0..{track.num_waypoints - 1}, not {start!r}")
    return min(profile_time(speed_profile(radii, spacing, start), spacing, start)
               for radii, spacing in _lines(track))
