"""The reference lap: the fastest lap the racing car's physics allows along a track's centre line.

It is what learners race against ("1.18x reference"). The speed profile follows the centre line from a
standing start at the start line: the cornering speed of every bend (``GRIP``), accelerating out of them
(``ACCELERATION``) and braking into them (``BRAKING``) with the car's limits (:mod:`.physics`). A car
that cuts the corners drives wider bends than the centre line's, so it can beat the reference a little:
the reference is the physical limit of keeping to the middle, not of the racing line.
"""

from __future__ import annotations

from functools import lru_cache

from .physics import profile_time, speed_profile
from .tracks import Track

CURVATURE_WINDOW = 3
"""Waypoints either side over which a bend's radius is measured (±15 px)."""


@lru_cache(maxsize=64)
def reference_lap_time(track: Track, start: int = 0) -> float:
    """Seconds of the fastest centre-line lap from rest at waypoint ``start`` (the start line: 0)."""
    if not 0 <= start < track.num_waypoints:
        raise ValueError(f"start must be a waypoint index 0..{track.num_waypoints - 1}, not {start!r}")
    radii = track.curvature_radii(window=CURVATURE_WINDOW)
    speeds = speed_profile(radii, track.segment_lengths, start)
    return profile_time(speeds, track.segment_lengths, start)
