"""The car-race simulator: N cars on one track in NumPy, behind Gymnasium's single and vector APIs.

Physics, per step: the car turns by ``TURN_DEGREES`` (left or right) or keeps its heading, then moves
``SPEED`` pixels forward. It leaves the asphalt when its centre is more than half the track width from
the centre line (the episode terminates), completes a lap when it has travelled one track length along
the centre line (terminates with ``info["lap_complete"]``), or runs out of steps (truncates).

Headings are whole multiples of 15 degrees (an index 0..23, counter-clockwise on screen, 0 = east), so
the radars are look-ups in precomputed maps (:mod:`rewards_api.envs.radar`). Two implementations share
every formula and table: :class:`CarRaceCore` steps N cars at once in NumPy (no Python loop over cars
except to call a user's reward function) and :class:`OneCar` steps one car in plain Python, where NumPy's
per-call overhead would dominate. Both do the same IEEE arithmetic in the same order, so a car follows
exactly the same trajectory in either.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

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
from .reward import RewardCallable, RewardFunction, load_reward_function
from .tracks import Track, get_track

SPEED = 10.0
"""Pixels the car moves in a step."""
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
            "nearest", "wp_x", "wp_y", "seg_x", "seg_y", "seg_len", "seg_len2", "arc_starts")}
        self.py_radar = memoryview(self.radar)
        self.heading_x, self.heading_y = HEADING_X.tolist(), HEADING_Y.tolist()


def params_dicts(
    alive: list[bool], radars: list[list[float]], actions: list[int], xs: list[float], ys: list[float],
    headings: list[int], progress: list[float], steps: list[int], offsets: list[float],
    left: list[bool], segments: list[int], track: Track,
) -> list[dict[str, Any]]:
    """Reward-function ``params`` dicts, one per car, from per-car columns of plain Python values.

    Keys and units are documented in :mod:`rewards_api.envs.reward`. This is the hot loop of a
    custom reward (one dict per car per step), so it is a single comprehension.
    """
    n = track.num_waypoints
    waypoints, width, length = track.waypoint_tuples, track.width, track.length
    direction, steering, heading_degrees = _DIRECTION, _STEERING, _HEADING_DEGREES
    return [
        {
            "is_alive": a, "observation": r, "radars": r, "direction": direction[act],
            "rotational_velocity": TURN_DEGREES, "steering_angle": steering[act], "car_location": (x, y),
            "x": x, "y": y, "heading": heading_degrees[h], "speed": SPEED, "progress": p, "steps": st,
            "distance_from_center": d, "track_width": width, "is_left_of_center": lft,
            "is_offtrack": not a, "closest_waypoints": [seg, (seg + 1) % n], "waypoints": waypoints,
            "track_length": length,
        }
        for a, r, act, x, y, h, p, st, d, lft, seg in zip(
            alive, radars, actions, xs, ys, headings, progress, steps, offsets, left, segments, strict=True
        )
    ]


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
        self.radars[cars] = self._read_radars()[cars]

    def start_waypoint(self, rng: np.random.Generator) -> int:
        """Where an episode starts: the start line, or a random waypoint with ``random_start``."""
        return _start_waypoint(self.random_start, self.track, rng)

    @property
    def progress(self) -> np.ndarray:
        """Percent of the lap completed by each car, 0-100."""
        return np.clip(self.travelled * self.tables.progress_scale, 0.0, 100.0)

    # ----- one step for every car ------------------------------------------------------------------
    def step(self, actions: np.ndarray, rewarded: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Advance every car by one action (0 left, 1 right, 2 straight).

        ``rewarded`` (bool mask) limits which cars the reward function is called for; the others
        get 0 (the vector env's cars that are about to be reset). Returns
        ``(observations, rewards, terminated, truncated)``.
        """
        self.action = actions.copy()
        self.heading = (self.heading + _TURN_STEPS[actions]) % NUM_HEADINGS
        self.x += SPEED * HEADING_X[self.heading]
        self.y += SPEED * HEADING_Y[self.heading]
        self.steps += 1
        self._locate()
        self.radars = self._read_radars()
        self.lap_complete = ~self.offtrack & (self.travelled >= self.tables.length)
        rewards = self._rewards(rewarded)
        self.score += rewards
        terminated = self.offtrack | self.lap_complete
        truncated = ~terminated & (self.steps >= self.max_episode_steps)
        return self.radars.copy(), rewards, terminated, truncated

    def _pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat index of the grid point nearest each car (clamped to the image), and whether the car
        is inside the image."""
        t = self.tables
        inside = (self.x >= 0) & (self.x < t.width) & (self.y >= 0) & (self.y < t.height)
        ix = np.clip(self.x + 0.5, 0, t.width - 1).astype(np.int64)
        iy = np.clip(self.y + 0.5, 0, t.height - 1).astype(np.int64)
        return iy * t.width + ix, inside

    def _read_radars(self) -> np.ndarray:
        pixel, inside = self._pixels()
        t = self.tables
        beams = (self.heading[:, None] + RADAR_OFFSETS) % NUM_HEADINGS
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
        return params_dicts(
            (~self.offtrack[cars]).tolist(), self.radars[cars].tolist(), self.action[cars].tolist(),
            self.x[cars].tolist(), self.y[cars].tolist(), self.heading[cars].tolist(),
            self.progress[cars].tolist(), self.steps[cars].tolist(),
            self.center_offset[cars].tolist(), self.left_of_center[cars].tolist(),
            self.segment[cars].tolist(), self.track,
        )

    def info(self) -> dict[str, np.ndarray]:
        """Per-car episode facts: running ``score``, ``progress`` (%), ``lap_complete``, ``steps``."""
        return {
            "score": self.score.copy(),
            "progress": self.progress,
            "lap_complete": self.lap_complete.copy(),
            "steps": self.steps.copy(),
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
        return params_dicts(
            [not self.offtrack], [list(self.radars)], [self.action], [self.x], [self.y], [self.heading],
            [self.progress], [self.steps], [self.center_offset], [self.left_of_center], [self.segment],
            self.track,
        )[0]

    def info(self) -> dict[str, Any]:
        return {"score": self.score, "progress": self.progress,
                "lap_complete": self.lap_complete, "steps": self.steps}

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

    hud = {"step": steps, "score": score, "progress": f"{progress:.1f} %"}
    return render_frame(track, x, y, math.radians(heading * TURN_DEGREES), radars, hud)


def _resolve(
    track: int | str | Track,
    mode: str,
    reward_function: str | RewardCallable | RewardFunction | None,
    render_mode: str | None,
) -> tuple[Track, RewardFunction | None]:
    if mode not in ("training", "evaluation"):
        raise ValueError(f"mode must be 'training' or 'evaluation', not {mode!r}")
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
    return get_track(track, mode), load_reward_function(reward_function)


class CarRaceEnv(gym.Env[np.ndarray, np.int64]):
    """One car on a race track (Gymnasium id ``rewards/CarRace-v0``).

    Args:
        track: 1-3 in ``training`` mode, 1 in ``evaluation`` mode, ``"random:SEED"`` for a generated
            practice track, ``"track-N.png"``, or a :class:`~rewards_api.envs.tracks.Track`.
        mode: ``"training"`` or ``"evaluation"`` (which set of built-in tracks).
        reward_function: Python source defining ``reward_function(params)``, a callable, or ``None``
            for +1 per step on the track.
        render_mode: ``None`` or ``"rgb_array"``.
        max_episode_steps: step limit (truncation); default ``LAP_TIME_LIMIT`` laps of driving.
        random_start: start each episode at a random waypoint (drawn from the env's seeded RNG).

    ``reset(options={"start_waypoint": k})`` starts that episode at waypoint ``k`` instead.
    Observation: the 5 radar distances (px). Actions: 0 left, 1 right, 2 straight on.
    ``info``: the episode's running ``score``, ``progress`` (%), ``lap_complete`` and ``steps``.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012

    def __init__(
        self,
        track: int | str | Track = 1,
        mode: str = "training",
        reward_function: str | RewardCallable | RewardFunction | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        random_start: bool = False,
    ) -> None:
        self.track, reward = _resolve(track, mode, reward_function, render_mode)
        self.car = OneCar(self.track, reward, max_episode_steps, random_start)
        self.render_mode = render_mode
        self.observation_space = OBSERVATION_SPACE
        self.action_space = ACTION_SPACE

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = _start_waypoint(self.car.random_start, self.track, self.np_random)
        if options and "start_waypoint" in options:
            start = _waypoint_option(options["start_waypoint"], self.track)
        self.car.reset(start)
        return np.array(self.car.radars, dtype=np.float32), self.car.info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if action not in (0, 1, 2):
            raise ValueError(f"action must be 0 (left), 1 (right) or 2 (straight), not {action!r}")
        radars, reward, terminated, truncated = self.car.step(int(action))
        obs = np.array(radars, dtype=np.float32)
        return obs, reward, terminated, truncated, self.car.info()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array' when the env is made")
            return None
        return self.car.render()


class CarRaceVectorEnv(VectorEnv):
    """``num_envs`` cars on one track, stepped together in NumPy (a native Gymnasium vector env).

    Takes the arguments of :class:`CarRaceEnv`, plus ``autoreset_mode`` (``"NextStep"``, Gymnasium's
    default, or ``"SameStep"``). With the same seed, car ``i`` follows exactly the trajectory of a
    single env reset with ``seed + i`` and given the same actions.

    ``render()`` draws car ``render_car`` (default 0; set it to watch another car).
    In ``SameStep`` mode the pre-reset observations of finished cars are in ``info["final_obs"]``
    (an (N, 5) array, valid where ``info["_final_obs"]``) and their episode facts in
    ``info["final_info"]``.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": ["rgb_array"],
        "render_fps": 30,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        track: int | str | Track = 1,
        mode: str = "training",
        reward_function: str | RewardCallable | RewardFunction | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        random_start: bool = False,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    ) -> None:
        self.track, reward = _resolve(track, mode, reward_function, render_mode)
        mode_ = AutoresetMode(autoreset_mode)
        if mode_ == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be 'NextStep' or 'SameStep'")
        self.core = CarRaceCore(self.track, num_envs, reward, max_episode_steps, random_start)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.render_car = 0
        self.metadata = {**self.metadata, "autoreset_mode": mode_}
        self.single_observation_space = OBSERVATION_SPACE
        self.single_action_space = ACTION_SPACE
        self.observation_space = spaces.Box(0.0, RADAR_RANGE, (num_envs, len(RADAR_ANGLES)),
                                            np.float32)
        self.action_space = spaces.MultiDiscrete(np.full(num_envs, 3))
        self._rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._all = np.arange(num_envs)
        self._mask = np.ones(num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} seeds")
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        self._reset_cars(self._all)
        self._needs_reset[:] = False
        return self.core.radars.copy(), self._info()

    def _reset_cars(self, cars: np.ndarray) -> None:
        starts = np.array([self.core.start_waypoint(self._rngs[i]) for i in cars], dtype=np.int64)
        self.core.reset_cars(cars, starts)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not self.action_space.contains(
            actions.astype(np.int64)
        ):
            raise ValueError(
                f"actions must be {self.num_envs} integers, each 0 (left), 1 (right) or 2 "
                f"(straight); got {actions!r}"
            )
        core = self.core
        if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            restarting = self._needs_reset
            obs, rewards, terminated, truncated = core.step(
                actions, rewarded=~restarting if restarting.any() else None
            )
            if restarting.any():
                cars = np.flatnonzero(restarting)
                self._reset_cars(cars)
                obs[cars] = core.radars[cars]
                rewards[cars] = 0.0
                terminated[cars] = truncated[cars] = False
            self._needs_reset = terminated | truncated
            return obs, rewards, terminated, truncated, self._info()

        obs, rewards, terminated, truncated = core.step(actions)
        info = self._info()
        done = terminated | truncated
        if done.any():
            cars = np.flatnonzero(done)
            info["final_obs"], info["_final_obs"] = obs.copy(), done
            info["final_info"], info["_final_info"] = info.copy(), done
            self._reset_cars(cars)
            obs[cars] = core.radars[cars]
        return obs, rewards, terminated, truncated, info

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.core.info()
        for key in list(info):
            info[f"_{key}"] = self._mask
        return info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array' when the env is made")
            return None
        return self.core.render(self.render_car)

    def render_car_frame(self, car: int) -> np.ndarray:
        """An RGB frame of car ``car`` (any index), whatever the render mode."""
        if not 0 <= car < self.num_envs:
            raise IndexError(f"car must be 0..{self.num_envs - 1}, not {car}")
        return self.core.render(car)
