"""Radar sensors: precomputed distance-to-grass maps, one per heading the car can have.

The car turns in whole steps of ``TURN_DEGREES`` (15), so its heading is always one of
``NUM_HEADINGS`` (24) directions, and so is every radar beam (-60, -30, 0, 30, 60 degrees are -4, -2,
0, 2 and 4 such steps). For each direction and each asphalt pixel the distance to the first grass along
the beam is measured once per track; a reading during the race is then a single array look-up.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .map_cache import cache_path, cached_array, digest
from .tracks import Track

TURN_DEGREES = 15.0
"""Degrees the car turns in a step, and the spacing of the headings it can have."""
NUM_HEADINGS = round(360 / TURN_DEGREES)
RADAR_ANGLES = (-60.0, -30.0, 0.0, 30.0, 60.0)
"""Radar directions in degrees from the heading; negative is clockwise (the car's right)."""
RADAR_OFFSETS = np.array([round(a / TURN_DEGREES) for a in RADAR_ANGLES], dtype=np.int64)
RADAR_RANGE = 200.0
"""Longest radar reading, in pixels."""
RADAR_SAMPLE = 5.0
"""Spacing of the samples along a beam while the maps are measured, in pixels."""

_ANGLES = np.radians(np.arange(NUM_HEADINGS) * TURN_DEGREES)
HEADING_X = np.cos(_ANGLES)
"""Screen x component of the unit vector of each heading index (0 = east, counter-clockwise)."""
HEADING_Y = -np.sin(_ANGLES)
"""Screen y component (y grows downwards) of the unit vector of each heading index."""


def heading_index(radians: float) -> int:
    """The nearest heading index (0..23) to an angle in radians, counter-clockwise on screen."""
    return round(float(np.degrees(radians)) / TURN_DEGREES) % NUM_HEADINGS


@lru_cache(maxsize=16)
def radar_maps(track: Track) -> np.ndarray:
    """(NUM_HEADINGS, H, W) uint8, read-only: distance in whole pixels from each point ``(x, y)`` with
    integer coordinates to the first grass along each heading, capped at ``RADAR_RANGE``; 0 on grass.

    A car at ``(x, y)`` reads the map at ``(round(x), round(y))``: off by at most 0.7 px. Measured once per
    machine and track, then read from the disk cache (:mod:`rewards_api.envs.map_cache`), keyed by the
    grid the maps are measured from and the radar's constants."""
    w, h = track.size
    margin_grid = _margin_grid(track)
    return cached_array("radar", _key(margin_grid), (NUM_HEADINGS, h, w), np.uint8,
                        lambda: _measure(margin_grid.ravel(), track.asphalt, w, h))


def is_measured(track: Track) -> bool:
    """Whether the track's radar maps are in the disk cache already (reading them is then instant)."""
    return cache_path("radar", _key(_margin_grid(track))).is_file()


def _margin_grid(track: Track) -> np.ndarray:
    return (track.half_width - track.center_distance).astype(np.float32)


def _key(margin_grid: np.ndarray) -> str:
    return digest(margin_grid, NUM_HEADINGS, RADAR_ANGLES, RADAR_RANGE, RADAR_SAMPLE)


def _measure(margin_grid: np.ndarray, asphalt: np.ndarray, w: int, h: int) -> np.ndarray:
    """The radar maps of a track: ``margin_grid`` (flat) is how far inside the asphalt each pixel is."""
    iy, ix = np.nonzero(asphalt)
    cx = ix.astype(np.float32)
    cy = iy.astype(np.float32)
    samples = np.arange(RADAR_SAMPLE, RADAR_RANGE + RADAR_SAMPLE / 2, RADAR_SAMPLE, dtype=np.float32)
    fine = np.arange(1.0, RADAR_SAMPLE + 0.5, 1.0, dtype=np.float32)

    def margins(beams: np.ndarray, t: np.ndarray, ux: np.float32, uy: np.float32) -> np.ndarray:
        px = np.clip(cx[beams] + ux * t, 0, w - 1).astype(np.int32)
        py = np.clip(cy[beams] + uy * t, 0, h - 1).astype(np.int32)
        return margin_grid[py * w + px]

    maps = np.zeros((NUM_HEADINGS, h, w), dtype=np.uint8)
    for k in range(NUM_HEADINGS):
        ux, uy = np.float32(HEADING_X[k]), np.float32(HEADING_Y[k])
        distance = np.full(len(cx), RADAR_RANGE, dtype=np.float32)
        active = np.arange(len(cx))  # beams that have not met grass yet
        for t in samples:
            hit = margins(active, t, ux, uy) < 0
            if not hit.any():
                continue
            # Refine to 1 px inside the last interval, then interpolate the edge within that pixel.
            beams = active[hit]
            along = np.tile((t - RADAR_SAMPLE) + fine, (len(beams), 1))  # (beams, 5) distances
            m = margins(np.repeat(beams, len(fine)), along.ravel(), ux, uy).reshape(along.shape)
            first = (m < 0).argmax(axis=1)
            rows = np.arange(len(beams))
            m1 = m[rows, first]
            before = margins(beams, t - RADAR_SAMPLE, ux, uy)  # the last sample still on asphalt
            m0 = np.where(first > 0, m[rows, np.maximum(first - 1, 0)], before)
            distance[beams] = along[rows, first] - 1.0 + m0 / np.maximum(m0 - m1, 1e-6)
            active = active[~hit]
            if not len(active):
                break
        maps[k, iy, ix] = np.clip(np.rint(distance), 0, RADAR_RANGE).astype(np.uint8)
    return maps
