"""The car-race simulator behind Gymnasium's single and vector APIs: the classic car and the racing car.

The physics live in :mod:`rewards_api.envs.classic` (the original game's car: constant speed, 15-degree
turns, three actions) and :mod:`rewards_api.envs.racing` (speed and steering, a kinematic bicycle with a
grip limit, ``discrete`` or ``continuous`` actions), their constants in :mod:`rewards_api.envs.physics`.
Both envs take ``action_space`` (``"classic"``, the default, ``"discrete"`` or ``"continuous"``) with
``actions`` (discrete) or ``speed_range`` (continuous); the vector env steps all its cars in one NumPy
state, and car ``i`` of it follows exactly the trajectory of a single env seeded ``seed + i``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

from .classic import (
    ACTION_SPACE,
    CLASSIC_SPEED,
    LAP_TIME_LIMIT,
    LEFT,
    OBSERVATION_SPACE,
    RIGHT,
    SPEED,
    STRAIGHT,
    CarRaceCore,
    OneCar,
    TrackTables,
    _start_waypoint,
    _waypoint_option,
    classic_params_dicts,
    default_step_limit,
    params_dicts,
)
from .racing import CarSpec, OneRacer, RacingCore, car_spec, racing_step_limit
from .reward import RewardCallable, RewardFunction, load_reward_function
from .tracks import Track, get_track

__all__ = [
    "ACTION_SPACE", "CLASSIC_SPEED", "LAP_TIME_LIMIT", "LEFT", "OBSERVATION_SPACE", "RIGHT", "SPEED",
    "STRAIGHT", "CarRaceCore", "CarRaceEnv", "CarRaceVectorEnv", "CarSpec", "OneCar", "OneRacer",
    "RacingCore", "TrackTables", "car_spec", "classic_params_dicts", "default_step_limit",
    "params_dicts", "racing_step_limit",
]


def _resolve(
    track: int | str | Track,
    mode: str,
    reward_function: str | RewardCallable | RewardFunction | None,
    render_mode: str | None,
) -> tuple[Track, RewardFunction | None]:
    """The track and the reward function of an env's arguments, checked."""
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
        action_space: ``"classic"`` (default: 3 actions at constant speed), ``"discrete"`` (the racing
            car, an index into ``actions``) or ``"continuous"`` (the racing car, ``[steering_angle,
            speed]``).
        actions: the discrete car's actions, ``{"steering_angle": degrees, "speed": m/s}`` each
            (default :data:`~rewards_api.envs.physics.DEFAULT_ACTIONS`).
        speed_range: the continuous car's ``(min, max)`` commanded speed in m/s.

    ``reset(options={"start_waypoint": k})`` starts that episode at waypoint ``k`` instead.
    Observation: the 5 radar distances (px), then, for the racing car, its speed (m/s). Classic actions:
    0 left, 1 right, 2 straight on. ``info``: the episode's running ``score``, ``progress`` (%),
    ``lap_complete``, ``steps``, simulated ``time`` (s; the lap time when ``lap_complete``), whether
    it ended ``offtrack``, and the ``speed`` (m/s).
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
        action_space: str = "classic",
        actions: Any = None,
        speed_range: Any = None,
    ) -> None:
        self.car_spec = car_spec(action_space, actions, speed_range)
        self.track, reward = _resolve(track, mode, reward_function, render_mode)
        self.car: OneCar | OneRacer
        if self.car_spec.racing:
            self.car = OneRacer(self.track, reward, max_episode_steps, random_start, self.car_spec)
        else:
            self.car = OneCar(self.track, reward, max_episode_steps, random_start)
        self.render_mode = render_mode
        self.observation_space = self.car_spec.observation_space()
        self.action_space = self.car_spec.action_space_of()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = _start_waypoint(self.car.random_start, self.track, self.np_random)
        if options and "start_waypoint" in options:
            start = _waypoint_option(options["start_waypoint"], self.track)
        self.car.reset(start)
        return self._observation(), self.car.info()

    def _observation(self) -> np.ndarray:
        if isinstance(self.car, OneRacer):
            return self.car.observation()
        return np.array(self.car.radars, dtype=np.float32)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        spec = self.car_spec
        if spec.action_space == "continuous":
            value = np.asarray(action, dtype=np.float64) if _numeric(action) else None
            if value is None or value.shape != (2,) or not np.isfinite(value).all():
                raise ValueError(f"action must be [steering_angle, speed]: {spec.describe_actions()}; "
                                 f"got {action!r}")
            step_action: Any = value
        else:
            if isinstance(action, (bool, np.bool_)) or action not in range(spec.num_actions):
                if not spec.racing:
                    raise ValueError(f"action must be 0 (left), 1 (right) or 2 (straight), not {action!r}")
                raise ValueError(f"action must be an index 0..{spec.num_actions - 1} into the session's "
                                 f"actions, not {action!r}")
            step_action = int(action)
        observation, reward, terminated, truncated = self.car.step(step_action)
        if not isinstance(self.car, OneRacer):
            observation = np.array(observation, dtype=np.float32)
        return observation, reward, terminated, truncated, self.car.info()

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
        action_space: str = "classic",
        actions: Any = None,
        speed_range: Any = None,
    ) -> None:
        self.car_spec = car_spec(action_space, actions, speed_range)
        self.track, reward = _resolve(track, mode, reward_function, render_mode)
        mode_ = AutoresetMode(autoreset_mode)
        if mode_ == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be 'NextStep' or 'SameStep'")
        self.core: CarRaceCore
        if self.car_spec.racing:
            self.core = RacingCore(self.track, num_envs, reward, max_episode_steps, random_start,
                                   self.car_spec)
        else:
            self.core = CarRaceCore(self.track, num_envs, reward, max_episode_steps, random_start)
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.render_car = 0
        self.metadata = {**self.metadata, "autoreset_mode": mode_}
        self.single_observation_space = self.car_spec.observation_space()
        self.single_action_space = self.car_spec.action_space_of()
        self.observation_space = self.car_spec.observation_space(num_envs)
        self.action_space = self.car_spec.action_space_of(num_envs)
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
        return self.core.observations(), self._info()

    def _reset_cars(self, cars: np.ndarray) -> None:
        starts = np.array([self.core.start_waypoint(self._rngs[i]) for i in cars], dtype=np.int64)
        self.core.reset_cars(cars, starts)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = self._checked_actions(actions)
        core = self.core
        if self.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP:
            restarting = self._needs_reset
            obs, rewards, terminated, truncated = core.step(
                actions, rewarded=~restarting if restarting.any() else None
            )
            if restarting.any():
                cars = np.flatnonzero(restarting)
                self._reset_cars(cars)
                obs[cars] = core.observations()[cars]
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
            obs[cars] = core.observations()[cars]
        return obs, rewards, terminated, truncated, info

    def _checked_actions(self, actions: Any) -> np.ndarray:
        spec, n = self.car_spec, self.num_envs
        if spec.action_space == "continuous":
            value = np.asarray(actions, dtype=np.float64) if _numeric(actions) else None
            if value is None or value.shape != (n, 2) or not np.isfinite(value).all():
                raise ValueError(f"actions must be {n} {spec.describe_actions()}; got {actions!r}")
            return value
        value = np.asarray(actions)
        whole = value.dtype.kind in "iu" or (value.dtype.kind == "f" and bool(np.isfinite(value).all())
                                             and bool((value == np.rint(value)).all()))
        if value.shape != (n,) or not whole or not ((value >= 0) & (value < spec.num_actions)).all():
            raise ValueError(f"actions must be {n} {spec.describe_actions()}; got {actions!r}")
        return value.astype(np.int64)

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


def _numeric(value: Any) -> bool:
    """Whether ``value`` converts to a float array (not text, not None)."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return array.dtype.kind in "iuf"
