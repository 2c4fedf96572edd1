"""The racing car's physics: every constant with its unit, the action spaces, and the reference lap.

Two kinds of car share the tracks (:mod:`rewards_api.envs.car_race` simulates both):

- ``classic``: the original game's car. It moves ``CLASSIC_SPEED`` pixels a step and turns 15 degrees a
  step (three actions: left, right, straight on). Unchanged, and the default of every session.
- the racing car (action spaces ``discrete`` and ``continuous``): a kinematic bicycle with a grip limit.
  Each step of ``STEP_SECONDS``, the speed moves towards the commanded speed by at most
  ``ACCELERATION`` (speeding up) or ``BRAKING`` (slowing down) times the step, the front wheels take the
  commanded steering angle, and the car turns as a bicycle of ``WHEELBASE`` would, but never more
  sharply than its tyres allow: the lateral acceleration ``speed**2 / radius`` is capped at ``GRIP``.
  Taken too fast, a bend makes the car run wide (it turns less than it steers) and off the track.

Lengths in the simulator are pixels of the track image; ``PIXELS_PER_METRE`` converts (1 px = 1 cm: the
training tracks are 60-70 px, 0.6-0.7 m, wide and 25-35 m round). Every time is simulated time: a step
is ``STEP_SECONDS`` whatever the computer's speed, so lap times are the same on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # NumPy loads in the functions that use it: the constants come without it (the CLI's)
    import numpy as np

# ----- units and time -----------------------------------------------------------------------------------
STEPS_PER_SECOND = 10
"""Steps per simulated second, for both cars (DeepRacer acts about 15 times a second)."""
STEP_SECONDS = 1 / STEPS_PER_SECOND
"""Simulated seconds per step (0.1 s). A time of ``steps`` steps is ``steps / STEPS_PER_SECOND``, which
is exact for tenths (``3 * 0.1`` is not)."""
PIXELS_PER_METRE = 100.0
"""Track pixels per metre (1 px = 1 cm)."""

# ----- the classic car ----------------------------------------------------------------------------------
CLASSIC_SPEED_PX = 10.0
"""Pixels the classic car moves per step (1 m/s)."""
CLASSIC_TURN_DEGREES = 15.0
"""Degrees the classic car turns in a turning step."""

# ----- the racing car -----------------------------------------------------------------------------------
WHEELBASE = 0.16
"""Metres between the front and rear axles (a 1:18 scale car, as DeepRacer's)."""
AXLE_TRACK = 0.16
"""Metres between the left and right wheels."""
MAX_STEERING = 30.0
"""Largest steering angle of the front wheels, degrees either side."""
MIN_SPEED = 0.5
"""Slowest commanded speed, m/s."""
MAX_SPEED = 4.0
"""Fastest commanded speed (and top speed), m/s."""
ACCELERATION = 3.0
"""Largest gain of speed, m/s per second."""
BRAKING = 6.0
"""Largest loss of speed, m/s per second."""
GRIP = 6.0
"""Largest lateral acceleration the tyres hold, m/s² (about 0.6 g): the cornering speed of a bend of
radius r metres is ``sqrt(GRIP * r)``."""
START_SPEED = 0.0
"""Speed at the start of an episode, m/s: every lap is timed from a standing start."""

ACTION_SPACES: tuple[str, ...] = ("classic", "discrete", "continuous")
"""The action spaces a session can choose (``env_params.json`` ``action_space``; default ``classic``)."""
DEFAULT_ACTION_SPACE = "classic"

DEFAULT_STEERING_ANGLES = (-30.0, -15.0, 0.0, 15.0, 30.0)
DEFAULT_SPEEDS = (1.5, 2.5, 4.0)


@dataclass(frozen=True)
class Action:
    """One action of the ``discrete`` racing car: front-wheel angle (degrees, + is left) and speed (m/s)."""

    steering_angle: float
    speed: float

    def as_dict(self) -> dict[str, float]:
        return {"steering_angle": self.steering_angle, "speed": self.speed}


DEFAULT_ACTIONS: tuple[Action, ...] = tuple(
    Action(angle, speed) for speed in DEFAULT_SPEEDS for angle in DEFAULT_STEERING_ANGLES
)
"""The ``discrete`` car's default actions: 5 steering angles at each of 3 speeds (15 actions)."""
DEFAULT_SPEED_RANGE = (MIN_SPEED, MAX_SPEED)
"""The ``continuous`` car's default commanded-speed range, m/s."""
MAX_ACTIONS = 64
"""Most actions a ``discrete`` action space may have."""


def cornering_speed(radius_px: float | np.ndarray) -> float | np.ndarray:
    """The fastest speed (m/s) the grip allows round a bend of ``radius_px`` pixels (capped at MAX_SPEED)."""
    import numpy as np

    return np.minimum(np.sqrt(GRIP * np.asarray(radius_px, dtype=np.float64) / PIXELS_PER_METRE), MAX_SPEED)


def speed_profile(radii_px: np.ndarray, spacing_px: np.ndarray, start: int = 0) -> np.ndarray:
    """The fastest speed (m/s) at each point of a closed path the physics allows, from a standing start.

    ``radii_px[i]`` is the bend's radius at point ``i``; ``spacing_px[i]`` the distance from point ``i``
    to point ``i + 1``. The car starts at rest at point ``start`` and drives once round: at every point
    it is at most the cornering speed, it gains speed no faster than ``ACCELERATION`` allows and brakes
    no harder than ``BRAKING`` does, so that it reaches every bend slow enough. Returns ``n + 1`` speeds:
    the lap's points from ``start`` on, and the finish (``start`` again, reached at speed).
    """
    import numpy as np

    n = len(radii_px)
    order = (np.arange(n + 1) + start) % n
    limit = np.asarray(cornering_speed(np.asarray(radii_px)[order]), dtype=np.float64)
    limit[0] = START_SPEED
    ds = np.asarray(spacing_px, dtype=np.float64)[order[:-1]] / PIXELS_PER_METRE
    speeds = limit.copy()
    for i in range(n):  # accelerate out of each bend
        speeds[i + 1] = min(speeds[i + 1], math.sqrt(speeds[i] ** 2 + 2 * ACCELERATION * ds[i]))
    speeds[-1] = min(speeds[-1], cornering_speed(radii_px[start]))
    for i in range(n - 1, -1, -1):  # brake into the next one
        speeds[i] = min(speeds[i], math.sqrt(speeds[i + 1] ** 2 + 2 * BRAKING * ds[i]))
    return speeds


def profile_time(speeds: np.ndarray, spacing_px: np.ndarray, start: int = 0) -> float:
    """Seconds to drive a :func:`speed_profile` (each stretch at the mean of its two speeds)."""
    import numpy as np

    n = len(spacing_px)
    order = (np.arange(n) + start) % n
    ds = np.asarray(spacing_px, dtype=np.float64)[order] / PIXELS_PER_METRE
    mean = np.maximum((speeds[:-1] + speeds[1:]) / 2, 1e-9)
    return float((ds / mean).sum())
