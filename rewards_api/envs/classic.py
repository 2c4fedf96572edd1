"""The classic car: the original game's physics for N cars in NumPy and for one car in plain Python.

Physics, per step: the car turns by ``TURN_DEGREES`` (left or right) or keeps its heading, then moves
``SPEED`` pixels forward. It leaves the asphalt when its centre is more than half the track width from
the centre line (the episode terminates), completes a lap when it has travelled one track length along
the centre line (terminates with ``info["lap_complete"]``), or runs out of steps (truncates).

Headings are whole multiples of 15 degrees (an index 0..23, counter-clockwise on screen, 0 = east), so
the radars are look-ups in precomputed maps (:mod:`rewards_api.envs.radar`). Two implementations share
every formula and table: :class:`CarRaceCore` steps N cars at once in NumPy (no Python loop over cars
except to call a user's reward function) and :class:`OneCar` steps one car in plain Python, where NumPy's
per-call overhead would dominate. Both do the same IEEE arithmetic in the same order, so a car follows
exactly the same trajectory in either. The racing car (:mod:`rewards_api.envs.racing`) builds on
:class:`CarRaceCore`'s tables and track projection.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from .physics import AXLE_TRACK, CLASSIC_SPEED_PX, PIXELS_PER_METRE, STEPS_PER_SECOND, WHEELBASE
from .radar import (
    HEADING_X,
    HEADING_Y,
    NUM_HEADINGS,
    RADAR_ANGLES,
    RADAR_OFFSETS,
    RADAR_RANGE,
    TURN_DEGREES,
    heading_index,
    radar_maps,
)
from .reward import RewardFunction
from .tracks import Track

SPEED = CLASSIC_SPEED_PX
"""Pixels the car moves in a step."""
CLASSIC_SPEED = CLASSIC_SPEED_PX * STEPS_PER_SECOND / PIXELS_PER_METRE
"""The classic car's speed in metres a second (1 m/s)."""
LAP_TIME_LIMIT = 3.0
"""Default step limit, in laps' worth of driving at full speed."""

LEFT, RIGHT, STRAIGHT = 0, 1, 2
_TURN_STEPS = np.array([1, -1, 0], dtype=np.int64)  # heading-index change of each action (CCW +)
_DIRECTION = (-1, 1, 0)  # params["direction"] of each action
_STEERING = (TURN_DEGREES, -TURN_DEGREES, 0.0)  # params["steering_angle"] of each action
_HEADING_DEGREES = tuple(
    (k * TURN_DEGREES) - 360.0 if k * TURN_DEGREES > 180.0 else k * TURN_DEGREES
    for k in range(NUM_HEADINGS)
)  # params["heading"] of each heading index, in (-180, 180]

_RADAR_OFFSETS = tuple(RADAR_OFFSETS.tolist())
_DIRECTIONS, _STEERINGS = np.array(_DIRECTION), np.array(_STEERING)  # the same, as arrays by action
_HEADINGS_DEGREES = np.array(_HEADING_DEGREES)
_WHEEL_ALONG = WHEELBASE * PIXELS_PER_METRE / 2  # px from the car's centre to each axle
_WHEEL_ACROSS = AXLE_TRACK * PIXELS_PER_METRE / 2  # px from the car's centre line to each wheel
WHEEL_OFFSETS = ((_WHEEL_ALONG, _WHEEL_ACROSS), (_WHEEL_ALONG, -_WHEEL_ACROSS),
                 (-_WHEEL_ALONG, _WHEEL_ACROSS), (-_WHEEL_ALONG, -_WHEEL_ACROSS))
"""(forward, left) pixels of each wheel from the car's centre, in the car's frame (either car)."""
_WHEEL_FORWARD = np.array([forward for forward, _ in WHEEL_OFFSETS])
_WHEEL_LEFTWARD = np.array([leftward for _, leftward in WHEEL_OFFSETS])

OBSERVATION_SPACE = spaces.Box(0.0, RADAR_RANGE, shape=(len(RADAR_ANGLES),), dtype=np.float32)
ACTION_SPACE = spaces.Discrete(3)


def default_step_limit(track: Track) -> int:
    """Steps allowed in an episode by default: ``LAP_TIME_LIMIT`` laps at full speed."""
    return math.ceil(LAP_TIME_LIMIT * track.length / SPEED)


class TrackTables:
    """A track's arrays in the forms the two simulators read: NumPy arrays and plain Python lists."""

    def __init__(self, track: Track) -> None:
        self.track = track
        self.width, self.height = track.size
        self.half_width = track.half_width
        self.length = track.length
        self.num_waypoints = track.num_waypoints
        self.progress_scale = 100.0 / track.length
        self.nearest = track.nearest_waypoint.ravel()
        self.center = track.center_distance.ravel()
        self.radar = radar_maps(track).ravel()
        self.plane = self.width * self.height
        self.wp_x, self.wp_y = track.waypoints[:, 0].copy(), track.waypoints[:, 1].copy()
        self.seg_x, self.seg_y = track.segments[:, 0].copy(), track.segments[:, 1].copy()
        self.seg_len = track.segment_lengths
        self.seg_len2 = self.seg_x * self.seg_x + self.seg_y * self.seg_y
        self.arc_starts = track.arc_starts
        self.start_headings = [
            heading_index(math.atan2(-sy, sx)) for sx, sy in zip(self.seg_x, self.seg_y, strict=True)
        ]
        # Plain-Python copies for the one-car simulator: list indexing beats NumPy scalars.
        self.py = {name: getattr(self, name).tolist() for name in (
            "nearest", "center", "wp_x", "wp_y", "seg_x", "seg_y", "seg_len", "seg_len2", "arc_starts")}
        self.py_radar = memoryview(self.radar)
        self.heading_x, self.heading_y = HEADING_X.tolist(), HEADING_Y.tolist()


def params_dicts(
    alive: list[bool], radars: list[list[float]], directions: list[int], rotations: list[float],
    steerings: list[float], xs: list[float], ys: list[float], headings: list[float], speeds: list[float],
    progress: list[float], steps: list[int], offsets: list[float], left: list[bool], segments: list[int],
    all_wheels: list[bool], reversed_: list[bool], track: Track,
) -> list[dict[str, Any]]:
    """Reward-function ``params`` dicts, one per car, from per-car columns of plain Python values.

    Keys and units are documented in :mod:`rewards_api.envs.reward`. This is the hot loop of a
    custom reward (one dict per car per step), so it is a single comprehension.
    """
    n = track.num_waypoints
    waypoints, width, length, per_second = track.waypoint_tuples, track.width, track.length, STEPS_PER_SECOND
    return [
        {
            "is_alive": a, "observation": r, "radars": r, "direction": d, "rotational_velocity": rot,
            "steering_angle": steer, "car_location": (x, y), "x": x, "y": y, "heading": h, "speed": v,
            "progress": p, "steps": st, "distance_from_center": off, "track_width": width,
            "is_left_of_center": lft, "is_offtrack": not a, "closest_waypoints": [seg, (seg + 1) % n],
            "waypoints": waypoints, "track_length": length, "all_wheels_on_track": wheels,
            "is_reversed": rev, "lap_time": st / per_second,
        }
        for a, r, d, rot, steer, x, y, h, v, p, st, off, lft, seg, wheels, rev in zip(
            alive, radars, directions, rotations, steerings, xs, ys, headings, speeds, progress, steps,
            offsets, left, segments, all_wheels, reversed_, strict=True
        )
    ]


def classic_params_dicts(
    alive: list[bool], radars: list[list[float]], actions: list[int], xs: list[float], ys: list[float],
    headings: list[int], progress: list[float], steps: list[int], offsets: list[float],
    left: list[bool], segments: list[int], all_wheels: list[bool], reversed_: list[bool], track: Track,
) -> list[dict[str, Any]]:
    """:func:`params_dicts` for classic cars, from their actions and heading indices."""
    count = len(actions)
    return params_dicts(
        alive, radars, [_DIRECTION[a] for a in actions], [TURN_DEGREES] * count,
        [_STEERING[a] for a in actions], xs, ys, [_HEADING_DEGREES[h] for h in headings], [SPEED] * count,
        progress, steps, offsets, left, segments, all_wheels, reversed_, track,
    )


class CarRaceCore:
    """The state and physics of ``num_cars`` independent cars on one track, in NumPy.

    All state arrays are indexed by car. Used by :class:`CarRaceVectorEnv`.
    """

    def __init__(
        self,
        track: Track,
        num_cars: int,
        reward_function: RewardFunction | None,
        max_episode_steps: int | None = None,
        random_start: bool = False,
    ) -> None:
        if num_cars < 1:
            raise ValueError(f"num_envs must be at least 1, not {num_cars}")
        self.track = track
        self.tables = TrackTables(track)
        self.num_cars = num_cars
        self.reward_function = reward_function
        self.max_episode_steps = _step_limit(track, max_episode_steps)
        self.random_start = random_start
        n = num_cars
        self.x = np.zeros(n)
        self.y = np.zeros(n)
        self.heading = np.zeros(n, dtype=np.int64)  # heading index, see radar.HEADING_X
        self.arc = np.zeros(n)  # position along the centre line, px from the start line
        self.travelled = np.zeros(n)  # px along the centre line since the episode's start
        self.steps = np.zeros(n, dtype=np.int64)
        self.score = np.zeros(n)
        self.action = np.full(n, STRAIGHT, dtype=np.int64)
        self.offtrack = np.zeros(n, dtype=bool)
        self.lap_complete = np.zeros(n, dtype=bool)
        self.center_offset = np.zeros(n)  # distance from the centre line, px
        self.left_of_center = np.zeros(n, dtype=bool)
        self.segment = np.zeros(n, dtype=np.int64)  # index of the waypoint behind the car
        self.radars = np.zeros((n, len(RADAR_ANGLES)), dtype=np.float32)

    # ----- episodes --------------------------------------------------------------------------------
    def reset_cars(self, cars: np.ndarray, start_waypoints: np.ndarray) -> None:
        """Put ``cars`` (indices) at ``start_waypoints``, facing along the track."""
        tables = self.tables
        self.x[cars] = tables.wp_x[start_waypoints]
        self.y[cars] = tables.wp_y[start_waypoints]
        self.heading[cars] = [tables.start_headings[s] for s in start_waypoints]
        self.arc[cars] = tables.arc_starts[start_waypoints]
        self.segment[cars] = start_waypoints
        for array in (self.travelled, self.score, self.center_offset):
            array[cars] = 0.0
        self.steps[cars] = 0
        self.action[cars] = STRAIGHT
        for array in (self.offtrack, self.lap_complete, self.left_of_center):
            array[cars] = False
        self.radars[cars] = self._read_radars(cars)

    def start_waypoint(self, rng: np.random.Generator) -> int:
        """Where an episode starts: the start line, or a random waypoint with ``random_start``."""
        return _start_waypoint(self.random_start, self.track, rng)

    @property
    def progress(self) -> np.ndarray:
        """Percent of the lap completed by each car, 0-100."""
        return np.clip(self.travelled * self.tables.progress_scale, 0.0, 100.0)

    def observations(self) -> np.ndarray:
        """(N, 5) float32: each car's radars (a copy)."""
        return self.radars.copy()

    # ----- one step for every car ------------------------------------------------------------------
    def step(self, actions: np.ndarray, rewarded: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Advance every car by one action (0 left, 1 right, 2 straight).

        ``rewarded`` (bool mask) limits which cars the reward function is called for; the others
        get 0 (the vector env's cars that are about to be reset). Returns
        ``(observations, rewards, terminated, truncated)``.
        """
        self._move(actions)
        self.steps += 1
        self._locate()
        self.radars = self._read_radars()
        self.lap_complete = ~self.offtrack & (self.travelled >= self.tables.length)
        rewards = self._rewards(rewarded)
        self.score += rewards
        terminated = self.offtrack | self.lap_complete
        truncated = ~terminated & (self.steps >= self.max_episode_steps)
        return self.observations(), rewards, terminated, truncated

    def _move(self, actions: np.ndarray) -> None:
        """The car's own physics: turn (or not), then drive ``SPEED`` px."""
        self.action = actions.copy()
        self.heading = (self.heading + _TURN_STEPS[actions]) % NUM_HEADINGS
        self.x += SPEED * HEADING_X[self.heading]
        self.y += SPEED * HEADING_Y[self.heading]

    def _pixels(self, cars: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Flat index of the grid point nearest each car (clamped to the image), and whether the car
        is inside the image."""
        t = self.tables
        x, y = self.x[cars], self.y[cars]
        inside = (x >= 0) & (x < t.width) & (y >= 0) & (y < t.height)
        ix = np.clip(x + 0.5, 0, t.width - 1).astype(np.int64)
        iy = np.clip(y + 0.5, 0, t.height - 1).astype(np.int64)
        return iy * t.width + ix, inside

    def _read_radars(self, cars: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The radars of ``cars`` (default: all), from the maps of their heading and pixel."""
        pixel, inside = self._pixels(cars)
        t = self.tables
        beams = (self.heading[cars][:, None] + RADAR_OFFSETS) % NUM_HEADINGS
        radars = t.radar[beams * t.plane + pixel[:, None]].astype(np.float32)
        radars[~inside] = 0.0
        return radars

    def _locate(self) -> None:
        """Project each car onto the centre line: offset, side, segment, and distance travelled.

        The nearest point of the centre line lies on the segment before or after the nearest
        waypoint: project onto both and keep the closer (the first on a tie).
        """
        t = self.tables
        pixel, inside = self._pixels()
        near = t.nearest[pixel]
        found = inside & (near >= 0)
        near = np.where(found, near, self.segment)
        best = None
        for segment in ((near - 1) % t.num_waypoints, near):
            sx, sy = t.seg_x[segment], t.seg_y[segment]
            rx, ry = self.x - t.wp_x[segment], self.y - t.wp_y[segment]
            along = np.clip((rx * sx + ry * sy) / t.seg_len2[segment], 0.0, 1.0)
            ox, oy = rx - along * sx, ry - along * sy
            d2 = ox * ox + oy * oy
            candidate = (d2, segment, along, sx * oy - sy * ox)
            if best is None:
                best = candidate
            else:
                closer = candidate[0] < best[0]
                best = tuple(np.where(closer, c, b) for c, b in zip(candidate, best, strict=True))
        d2, segment, along, cross = best
        arc = t.arc_starts[segment] + along * t.seg_len[segment]
        half = t.length / 2
        delta = (arc - self.arc + half) % t.length - half
        self.travelled = np.where(found, self.travelled + delta, self.travelled)
        self.arc = np.where(found, arc, self.arc)
        self.segment = np.where(found, segment, self.segment)
        self.center_offset = np.sqrt(d2)
        self.left_of_center = cross < 0  # y points down: a negative cross product is to the left
        self.offtrack = ~found | (self.center_offset > t.half_width)

    def _rewards(self, rewarded: np.ndarray | None) -> np.ndarray:
        if self.reward_function is None:
            rewards = (~self.offtrack).astype(np.float64)
            if rewarded is not None:
                rewards[~rewarded] = 0.0
            return rewards
        if rewarded is None:
            return self.reward_function.batch(self.params(slice(None)))
        rewards = np.zeros(self.num_cars)
        cars = np.flatnonzero(rewarded)
        if len(cars):
            rewards[cars] = self.reward_function.batch(self.params(cars))
        return rewards

    def params(self, cars: np.ndarray | slice) -> list[dict[str, Any]]:
        """The reward function's ``params`` dicts for ``cars`` (indices or a slice)."""
        heading, action = self.heading[cars], self.action[cars]
        hx, hy = HEADING_X[heading], HEADING_Y[heading]
        count = len(heading)
        return params_dicts(
            (~self.offtrack[cars]).tolist(), self.radars[cars].tolist(), _DIRECTIONS[action].tolist(),
            [TURN_DEGREES] * count, _STEERINGS[action].tolist(), self.x[cars].tolist(),
            self.y[cars].tolist(), _HEADINGS_DEGREES[heading].tolist(), [SPEED] * count,
            self.progress[cars].tolist(), self.steps[cars].tolist(), self.center_offset[cars].tolist(),
            self.left_of_center[cars].tolist(), self.segment[cars].tolist(),
            self.wheels_on_track(cars, hx, hy).tolist(), self.is_reversed(cars, hx, hy).tolist(), self.track,
        )

    def wheels_on_track(self, cars: np.ndarray | slice, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
        """Whether all four wheels of ``cars`` are on the asphalt; ``(hx, hy)``: their unit headings."""
        t = self.tables
        x, y, hx, hy = self.x[cars][:, None], self.y[cars][:, None], hx[:, None], hy[:, None]
        wx = x + _WHEEL_FORWARD * hx + _WHEEL_LEFTWARD * hy  # (hy, -hx) is the car's left on screen (y down)
        wy = y + _WHEEL_FORWARD * hy - _WHEEL_LEFTWARD * hx
        inside = (wx >= 0) & (wx < t.width) & (wy >= 0) & (wy < t.height)
        ix = np.clip(wx, 0, t.width - 1).astype(np.int64)
        iy = np.clip(wy, 0, t.height - 1).astype(np.int64)
        return (inside & (t.center[iy * t.width + ix] <= t.half_width)).all(axis=1)

    def is_reversed(self, cars: np.ndarray | slice, hx: np.ndarray, hy: np.ndarray) -> np.ndarray:
        """Whether ``cars`` face against the track's direction (more than 90 degrees from it)."""
        t = self.tables
        segment = self.segment[cars]
        return hx * t.seg_x[segment] + hy * t.seg_y[segment] < 0

    def info(self) -> dict[str, np.ndarray]:
        """Per-car episode facts: running ``score``, ``progress`` (%), ``lap_complete``, ``steps``, and the
        episode's simulated ``time`` (s), whether it ended ``offtrack``, and the ``speed`` (m/s)."""
        return {
            "score": self.score.copy(),
            "progress": self.progress,
            "lap_complete": self.lap_complete.copy(),
            "steps": self.steps.copy(),
            "time": self.steps / STEPS_PER_SECOND,
            "offtrack": self.offtrack.copy(),
            "speed": np.full(self.num_cars, CLASSIC_SPEED),
        }

    def render(self, car: int = 0) -> np.ndarray:
        """An RGB frame of the track with car ``car``, its radars and a HUD."""
        return _render(self.track, float(self.x[car]), float(self.y[car]), int(self.heading[car]),
                       self.radars[car].tolist(), int(self.steps[car]), float(self.score[car]),
                       float(self.progress[car]))


class OneCar:
    """One car's state and physics in plain Python floats: :class:`CarRaceCore`'s formulas, one car.

    Used by :class:`CarRaceEnv`; a test holds the two to the same trajectories.
    """

    def __init__(
        self,
        track: Track,
        reward_function: RewardFunction | None,
        max_episode_steps: int | None = None,
        random_start: bool = False,
    ) -> None:
        self.track = track
        self.tables = TrackTables(track)
        self.reward_function = reward_function
        self.max_episode_steps = _step_limit(track, max_episode_steps)
        self.random_start = random_start
        self.reset(0)

    def reset(self, start: int) -> None:
        t = self.tables.py
        self.x, self.y = t["wp_x"][start], t["wp_y"][start]
        self.heading = self.tables.start_headings[start]
        self.arc, self.travelled, self.score, self.center_offset = t["arc_starts"][start], 0.0, 0.0, 0.0
        self.segment, self.steps, self.action = start, 0, STRAIGHT
        self.offtrack = self.lap_complete = self.left_of_center = False
        self.radars = self._read_radars(*self._pixel())

    @property
    def progress(self) -> float:
        return min(max(self.travelled * self.tables.progress_scale, 0.0), 100.0)

    def step(self, action: int) -> tuple[list[float], float, bool, bool]:
        """Advance by one action; returns ``(radars, reward, terminated, truncated)``."""
        tables = self.tables
        self.action = action
        self.heading = (self.heading + (1, -1, 0)[action]) % NUM_HEADINGS
        self.x += SPEED * tables.heading_x[self.heading]
        self.y += SPEED * tables.heading_y[self.heading]
        self.steps += 1
        pixel, inside = self._pixel()
        self._locate(pixel, inside)
        self.radars = self._read_radars(pixel, inside)
        self.lap_complete = not self.offtrack and self.travelled >= tables.length
        if self.reward_function is None:
            reward = 0.0 if self.offtrack else 1.0
        else:
            reward = self.reward_function.one(self.params())
        self.score += reward
        terminated = self.offtrack or self.lap_complete
        truncated = not terminated and self.steps >= self.max_episode_steps
        return self.radars, reward, terminated, truncated

    def _pixel(self) -> tuple[int, bool]:
        t = self.tables
        x, y = self.x, self.y
        inside = 0 <= x < t.width and 0 <= y < t.height
        ix = int(min(max(x + 0.5, 0), t.width - 1))
        iy = int(min(max(y + 0.5, 0), t.height - 1))
        return iy * t.width + ix, inside

    def _read_radars(self, pixel: int, inside: bool) -> list[float]:
        if not inside:
            return [0.0] * len(RADAR_OFFSETS)
        t = self.tables
        radar, plane, heading = t.py_radar, t.plane, self.heading
        return [float(radar[((heading + o) % NUM_HEADINGS) * plane + pixel])
                for o in _RADAR_OFFSETS]

    def _locate(self, pixel: int, inside: bool) -> None:
        t = self.tables
        p = t.py
        near = p["nearest"][pixel]
        found = inside and near >= 0
        if not found:
            near = self.segment
        best = None
        for segment in ((near - 1) % t.num_waypoints, near):
            sx, sy = p["seg_x"][segment], p["seg_y"][segment]
            rx, ry = self.x - p["wp_x"][segment], self.y - p["wp_y"][segment]
            along = min(max((rx * sx + ry * sy) / p["seg_len2"][segment], 0.0), 1.0)
            ox, oy = rx - along * sx, ry - along * sy
            d2 = ox * ox + oy * oy
            if best is None or d2 < best[0]:
                best = (d2, segment, along, sx * oy - sy * ox)
        d2, segment, along, cross = best
        if found:
            arc = p["arc_starts"][segment] + along * p["seg_len"][segment]
            half = t.length / 2
            self.travelled += (arc - self.arc + half) % t.length - half
            self.arc, self.segment = arc, segment
        self.center_offset = math.sqrt(d2)
        self.left_of_center = cross < 0
        self.offtrack = not found or self.center_offset > t.half_width

    def params(self) -> dict[str, Any]:
        t = self.tables
        hx, hy = t.heading_x[self.heading], t.heading_y[self.heading]
        segment = self.segment
        reversed_ = hx * t.py["seg_x"][segment] + hy * t.py["seg_y"][segment] < 0
        return classic_params_dicts(
            [not self.offtrack], [list(self.radars)], [self.action], [self.x], [self.y], [self.heading],
            [self.progress], [self.steps], [self.center_offset], [self.left_of_center], [self.segment],
            [self._wheels_on_track(hx, hy)], [reversed_], self.track,
        )[0]

    def _wheels_on_track(self, hx: float, hy: float) -> bool:
        t = self.tables
        center, x, y = t.py["center"], self.x, self.y
        for forward, leftward in WHEEL_OFFSETS:
            wx = x + forward * hx + leftward * hy
            wy = y + forward * hy - leftward * hx
            if not (0 <= wx < t.width and 0 <= wy < t.height):
                return False
            if center[int(wy) * t.width + int(wx)] > t.half_width:
                return False
        return True

    def info(self) -> dict[str, Any]:
        return {"score": self.score, "progress": self.progress, "lap_complete": self.lap_complete,
                "steps": self.steps, "time": self.steps / STEPS_PER_SECOND, "offtrack": self.offtrack,
                "speed": CLASSIC_SPEED}

    @property
    def time(self) -> float:
        """Simulated seconds since the episode started."""
        return self.steps / STEPS_PER_SECOND

    @property
    def speed(self) -> float:
        """Metres a second (the classic car's are constant)."""
        return CLASSIC_SPEED

    @property
    def steering(self) -> float:
        """The steering angle of the last step, degrees (+ is left)."""
        return _STEERING[self.action]

    @property
    def heading_radians(self) -> float:
        """The heading in radians, counter-clockwise on screen, 0 = east (as drawn)."""
        return math.radians(self.heading * TURN_DEGREES)

    def render(self) -> np.ndarray:
        return _render(self.track, self.x, self.y, self.heading, self.radars, self.steps,
                       self.score, self.progress)


def _step_limit(track: Track, max_episode_steps: int | None) -> int:
    if max_episode_steps is None:
        return default_step_limit(track)
    if int(max_episode_steps) < 1:
        raise ValueError(f"max_episode_steps must be a positive number of steps, not "
                         f"{max_episode_steps!r}")
    return int(max_episode_steps)


def _start_waypoint(random_start: bool, track: Track, rng: np.random.Generator) -> int:
    return int(rng.integers(track.num_waypoints)) if random_start else 0


def _waypoint_option(value: Any, track: Track) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
        0 <= value < track.num_waypoints
    ):
        raise ValueError(f"options['start_waypoint'] must be a waypoint index 0..{track.num_waypoints - 1}, "
                         f"not {value!r}")
    return int(value)


def _render(track: Track, x: float, y: float, heading: int, radars: list[float], steps: int,
            score: float, progress: float) -> np.ndarray:
    from .render import render_frame  # Pillow drawing is only needed by those who watch

    hud = {"step": steps, "score": score, "progress": f"{progress:.1f} %",
           "lap time": f"{steps / STEPS_PER_SECOND:.1f} s"}
    return render_frame(track, x, y, math.radians(heading * TURN_DEGREES), radars, hud)
