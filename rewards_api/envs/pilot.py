"""A scripted driver that follows the centre line: a baseline, a benchmark load and a test of tracks."""

from __future__ import annotations

import numpy as np

from .car_race import LEFT, RIGHT, STRAIGHT, CarRaceCore, OneCar
from .radar import NUM_HEADINGS, TURN_DEGREES

LOOKAHEAD = 5
"""Waypoints ahead of the car that the pilot steers towards (5 px apart)."""


def centerline_actions(
    track_x: np.ndarray, track_y: np.ndarray, x: np.ndarray, y: np.ndarray,
    heading: np.ndarray, segment: np.ndarray, lookahead: int = LOOKAHEAD,
) -> np.ndarray:
    """For each car, the action that best points it at the centre line ``lookahead`` waypoints ahead.

    ``heading`` is the car's heading index (multiples of 15 degrees); arrays are indexed by car.
    """
    target = (segment + lookahead) % len(track_x)
    wanted = np.degrees(np.arctan2(-(track_y[target] - y), track_x[target] - x))
    error = (wanted - heading * TURN_DEGREES + 180.0) % 360.0 - 180.0
    half_turn = TURN_DEGREES / 2
    return np.where(error > half_turn, LEFT, np.where(error < -half_turn, RIGHT, STRAIGHT))


def pilot_actions(sim: CarRaceCore | OneCar) -> np.ndarray:
    """Centre-line actions for every car of a simulator (an array of one action for :class:`OneCar`)."""
    t = sim.tables
    return centerline_actions(
        t.wp_x, t.wp_y, np.atleast_1d(sim.x), np.atleast_1d(sim.y),
        np.atleast_1d(sim.heading) % NUM_HEADINGS, np.atleast_1d(sim.segment),
    )
