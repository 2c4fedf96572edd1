"""The racing car: speed and steering, a kinematic bicycle with a grip limit (constants in :mod:`.physics`).

Per step, for every car at once in NumPy:

1. the action gives a commanded steering angle and speed (``discrete``: one of the session's
   ``{steering_angle, speed}`` actions; ``continuous``: the two numbers, clipped into their bounds);
2. the speed moves towards the commanded one, by at most ``ACCELERATION`` or ``BRAKING`` times the step;
3. the front wheels take the commanded angle, but the car turns no more sharply than the grip allows:
   a bicycle of wheelbase ``L`` steered by ``delta`` follows a circle of radius ``L / tan(delta)``, whose
   lateral acceleration ``v**2 tan(delta) / L`` is capped at ``GRIP``. The angle the car really steers
   (``params["steering_angle"]``) is the smaller one, so a bend taken too fast runs the car wide;
4. the car drives the arc of the step (the mean of the step's two speeds, turning about the middle of
   it), and is located on the track as the classic car is (:class:`~.classic.CarRaceCore`).

The radars are read from the same per-heading maps as the classic car's, for the heading rounded to the
nearest 15 degrees. The observation is the 5 radars (px) and the speed (m/s). The single env drives a
:class:`RacingCore` of one car (:class:`OneRacer`), so single and vector envs are the same arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from .classic import CarRaceCore, params_dicts
from .physics import (
    ACCELERATION,
    ACTION_SPACES,
    BRAKING,
    DEFAULT_ACTIONS,
    DEFAULT_SPEED_RANGE,
    GRIP,
    MAX_ACTIONS,
    MAX_SPEED,
    MAX_STEERING,
    MIN_SPEED,
    PIXELS_PER_METRE,
    START_SPEED,
    STEPS_PER_SECOND,
    WHEELBASE,
    Action,
)
from .radar import NUM_HEADINGS, RADAR_ANGLES, RADAR_RANGE, TURN_DEGREES
from .reward import RewardFunction
from .tracks import Track

__all__ = ["CarSpec", "OneRacer", "RacingCore", "car_spec", "racing_step_limit"]

_STEP = 1.0 / STEPS_PER_SECOND
_HEADING_STEP = math.radians(TURN_DEGREES)
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class CarSpec:
    """Which car a session drives, and its actions: the Gymnasium spaces and the commands they mean."""

    action_space: str = "classic"
    actions: tuple[Action, ...] = DEFAULT_ACTIONS
    speed_range: tuple[float, float] = DEFAULT_SPEED_RANGE

    @property
    def racing(self) -> bool:
        """Whether this is the racing car (speed and steering) rather than the classic one."""
        return self.action_space != "classic"

    @property
    def observation_size(self) -> int:
        """Inputs a network takes: the 5 radars, and the speed for the racing car."""
        return len(RADAR_ANGLES) + (1 if self.racing else 0)

    @property
    def num_actions(self) -> int:
        """Outputs of a Q-network: 3 classic actions, the discrete actions, or 2 numbers (continuous)."""
        return {"classic": 3, "discrete": len(self.actions), "continuous": 2}[self.action_space]

    def observation_space(self, num_envs: int | None = None) -> spaces.Box:
        """The observation space of one car (``num_envs`` None) or of ``num_envs`` cars."""
        high = np.full(self.observation_size, RADAR_RANGE, dtype=np.float32)
        if self.racing:
            high[-1] = MAX_SPEED
        if num_envs is not None:
            high = np.tile(high, (num_envs, 1))
        return spaces.Box(np.zeros_like(high), high, dtype=np.float32)

    def action_space_of(self, num_envs: int | None = None) -> spaces.Space:
        """The action space of one car (``num_envs`` None) or of ``num_envs`` cars."""
        if self.action_space == "continuous":
            low = np.array([-MAX_STEERING, self.speed_range[0]], dtype=np.float32)
            high = np.array([MAX_STEERING, self.speed_range[1]], dtype=np.float32)
            if num_envs is not None:
                low, high = np.tile(low, (num_envs, 1)), np.tile(high, (num_envs, 1))
            return spaces.Box(low, high, dtype=np.float32)
        if num_envs is None:
            return spaces.Discrete(self.num_actions)
        return spaces.MultiDiscrete(np.full(num_envs, self.num_actions))

    def describe_actions(self) -> str:
        """What an action is, for error messages."""
        if self.action_space == "continuous":
            low, high = self.speed_range
            return (f"[steering_angle, speed] pairs, steering from -{MAX_STEERING:g} to {MAX_STEERING:g} "
                    f"degrees and speed from {low:g} to {high:g} m/s")
        if self.action_space == "classic":
            return "integers, each 0 (left), 1 (right) or 2 (straight)"
        return f"integers, each an index 0..{self.num_actions - 1} into the session's actions"


def car_spec(
    action_space: str = "classic",
    actions: Any = None,
    speed_range: Any = None,
) -> CarSpec:
    """A checked :class:`CarSpec` from env arguments; ValueError naming the argument otherwise.

    ``actions``: for ``discrete``, a list of ``{"steering_angle", "speed"}`` dicts, ``(angle, speed)``
    pairs or :class:`~.physics.Action`; ``speed_range``: for ``continuous``, ``(min, max)`` m/s.
    """
    if action_space not in ACTION_SPACES:
        raise ValueError(f"action_space must be one of {', '.join(map(repr, ACTION_SPACES))}, not "
                         f"{action_space!r}")
    chosen = DEFAULT_ACTIONS
    if actions is not None:
        if action_space != "discrete":
            raise ValueError(f"actions is for the 'discrete' action space, not {action_space!r}")
        chosen = tuple(_action(number, action) for number, action in enumerate(actions))
        if not 2 <= len(chosen) <= MAX_ACTIONS:
            raise ValueError(f"actions must be 2 to {MAX_ACTIONS} actions, not {len(chosen)}")
    bounds = DEFAULT_SPEED_RANGE
    if speed_range is not None:
        if action_space != "continuous":
            raise ValueError(f"speed_range is for the 'continuous' action space, not {action_space!r}")
        try:
            low, high = (float(v) for v in speed_range)
        except (TypeError, ValueError):
            raise ValueError(f"speed_range must be [min, max] in m/s, not {speed_range!r}") from None
        if not MIN_SPEED <= low < high <= MAX_SPEED:
            raise ValueError(f"speed_range must be [min, max] with {MIN_SPEED:g} <= min < max <= "
                             f"{MAX_SPEED:g} m/s, not {speed_range!r}")
        bounds = (low, high)
    return CarSpec(action_space, chosen, bounds)


def _action(number: int, action: Any) -> Action:
    if isinstance(action, Action):
        angle, speed = action.steering_angle, action.speed
    elif isinstance(action, dict):
        angle, speed = action.get("steering_angle"), action.get("speed")
    else:
        try:
            angle, speed = action
        except (TypeError, ValueError):
            angle = speed = None
    for name, value in (("steering_angle", angle), ("speed", speed)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"actions[{number}] must be {{'steering_angle': degrees, 'speed': m/s}}; its "
                             f"{name} is {value!r}")
    if not -MAX_STEERING <= angle <= MAX_STEERING:
        raise ValueError(f"actions[{number}].steering_angle = {angle!r}: use -{MAX_STEERING:g} to "
                         f"{MAX_STEERING:g} degrees")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"actions[{number}].speed = {speed!r}: use {MIN_SPEED:g} to {MAX_SPEED:g} m/s")
    return Action(float(angle), float(speed))


def racing_step_limit(track: Track) -> int:
    """Default step limit of a racing car's episode: one lap at ``MIN_SPEED``."""
    return math.ceil(track.length / (MIN_SPEED * PIXELS_PER_METRE * _STEP))


class RacingCore(CarRaceCore):
    """``num_cars`` racing cars on one track, in NumPy (see the module docstring for the physics)."""

    def __init__(
        self,
        track: Track,
        num_cars: int,
        reward_function: RewardFunction | None,
        max_episode_steps: int | None = None,
        random_start: bool = False,
        spec: CarSpec | None = None,
    ) -> None:
        super().__init__(track, num_cars, reward_function,
                         racing_step_limit(track) if max_episode_steps is None else max_episode_steps,
                         random_start)
        self.spec = spec or CarSpec("discrete")
        if not self.spec.racing:
            raise ValueError("RacingCore drives the racing car: use action_space 'discrete' or 'continuous'")
        n = num_cars
        self.yaw = np.zeros(n)  # radians, counter-clockwise on screen, 0 = east, in [-pi, pi)
        self.speed = np.zeros(n)  # m/s
        self.steering = np.zeros(n)  # degrees the front wheels really steer, + left
        self.turned = np.zeros(n)  # degrees the car turned in the last step, + left
        self._angles = np.array([a.steering_angle for a in self.spec.actions])
        self._speeds = np.array([a.speed for a in self.spec.actions])
        low, high = self.spec.speed_range
        self._low = np.array([-MAX_STEERING, low])
        self._high = np.array([MAX_STEERING, high])

    def reset_cars(self, cars: np.ndarray, start_waypoints: np.ndarray) -> None:
        """Put ``cars`` at ``start_waypoints``, at rest, facing along the track."""
        t = self.tables
        self.yaw[cars] = np.arctan2(-t.seg_y[start_waypoints], t.seg_x[start_waypoints])
        self.speed[cars] = START_SPEED
        self.steering[cars] = 0.0
        self.turned[cars] = 0.0
        super().reset_cars(cars, start_waypoints)  # its radars are those of the start's heading index
        self.heading[cars] = self._heading_index(self.yaw[cars])
        self.radars[cars] = self._read_radars(cars)

    @staticmethod
    def _heading_index(yaw: np.ndarray) -> np.ndarray:
        return np.rint(yaw / _HEADING_STEP).astype(np.int64) % NUM_HEADINGS

    def commands(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Commanded steering (degrees) and speed (m/s) of each car's action."""
        if self.spec.action_space == "discrete":
            return self._angles[actions], self._speeds[actions]
        clipped = np.clip(np.asarray(actions, dtype=np.float64), self._low, self._high)
        return clipped[:, 0], clipped[:, 1]

    def _move(self, actions: np.ndarray) -> None:
        """The racing car's physics (see the module docstring); the rest of a step is the classic car's."""
        steer, target = self.commands(actions)
        self.action = np.array(actions, copy=True)
        before = self.speed
        speed = before + np.clip(target - before, -BRAKING * _STEP, ACCELERATION * _STEP)
        wanted = np.tan(np.radians(steer))
        grip = GRIP * WHEELBASE / np.maximum(speed * speed, 1e-9)  # the largest tan(delta) the tyres hold
        steered = np.clip(wanted, -grip, grip)
        metres = (before + speed) * (0.5 * _STEP)
        turn = metres * steered / WHEELBASE  # radians: arc length times curvature
        middle = self.yaw + 0.5 * turn
        pixels = metres * PIXELS_PER_METRE
        self.x = self.x + pixels * np.cos(middle)
        self.y = self.y - pixels * np.sin(middle)
        self.yaw = (self.yaw + turn + math.pi) % _TWO_PI - math.pi
        self.speed = speed
        self.steering = np.degrees(np.arctan(steered))
        self.turned = np.degrees(turn)
        self.heading = self._heading_index(self.yaw)

    def observations(self) -> np.ndarray:
        """(N, 6) float32: each car's 5 radars (px) and its speed (m/s)."""
        return np.concatenate([self.radars, self.speed[:, None].astype(np.float32)], axis=1)

    def params(self, cars: np.ndarray | slice) -> list[dict[str, Any]]:
        """The reward function's ``params`` dicts for ``cars`` (indices or a slice)."""
        yaw = self.yaw[cars]
        hx, hy = np.cos(yaw), -np.sin(yaw)
        steering = self.steering[cars]
        heading = np.degrees(yaw)
        heading = np.where(heading <= -180.0, heading + 360.0, heading)
        return params_dicts(
            (~self.offtrack[cars]).tolist(), self.radars[cars].tolist(),
            np.sign(-steering).astype(np.int64).tolist(), np.abs(self.turned[cars]).tolist(),
            steering.tolist(), self.x[cars].tolist(), self.y[cars].tolist(), heading.tolist(),
            self.speed[cars].tolist(), self.progress[cars].tolist(), self.steps[cars].tolist(),
            self.center_offset[cars].tolist(), self.left_of_center[cars].tolist(),
            self.segment[cars].tolist(), self.wheels_on_track(cars, hx, hy).tolist(),
            self.is_reversed(cars, hx, hy).tolist(), self.track,
        )

    def info(self) -> dict[str, np.ndarray]:
        info = super().info()
        info["speed"] = self.speed.copy()
        return info

    def render(self, car: int = 0) -> np.ndarray:
        from .render import render_frame

        return render_frame(self.track, float(self.x[car]), float(self.y[car]), float(self.yaw[car]),
                            self.radars[car].tolist(), self.hud(car))

    def hud(self, car: int) -> dict[str, Any]:
        """The live view's panel for car ``car``: speed and lap time beside the classic figures."""
        return {"step": int(self.steps[car]), "score": float(self.score[car]),
                "progress": f"{float(self.progress[car]):.1f} %",
                "speed": f"{float(self.speed[car]):.2f} m/s",
                "lap time": f"{int(self.steps[car]) / STEPS_PER_SECOND:.1f} s"}


class OneRacer:
    """One racing car: a :class:`RacingCore` of one car, with scalar attributes as :class:`~.classic.OneCar`
    has (so single and vector envs do exactly the same arithmetic)."""

    def __init__(
        self,
        track: Track,
        reward_function: RewardFunction | None,
        max_episode_steps: int | None = None,
        random_start: bool = False,
        spec: CarSpec | None = None,
    ) -> None:
        self.core = RacingCore(track, 1, reward_function, max_episode_steps, random_start, spec)
        self.track = track
        self.tables = self.core.tables
        self.reward_function = reward_function
        self.max_episode_steps = self.core.max_episode_steps
        self.random_start = random_start
        self.reset(0)

    def reset(self, start: int) -> None:
        self.core.reset_cars(np.zeros(1, dtype=np.int64), np.array([start], dtype=np.int64))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        """Advance by one action; returns ``(observation, reward, terminated, truncated)``."""
        actions = np.asarray(action, dtype=np.float64)[None] if self.core.spec.action_space == "continuous" \
            else np.array([action], dtype=np.int64)
        obs, rewards, terminated, truncated = self.core.step(actions)
        return obs[0], float(rewards[0]), bool(terminated[0]), bool(truncated[0])

    def observation(self) -> np.ndarray:
        return self.core.observations()[0]

    def __getattr__(self, name: str) -> Any:
        # Scalar views of the core's per-car state: x, y, yaw, heading, speed, steering, score, ...
        if name in _SCALARS:
            return _SCALARS[name](self.core.__dict__[name][0])
        raise AttributeError(name)

    @property
    def radars(self) -> list[float]:
        return self.core.radars[0].tolist()

    @property
    def progress(self) -> float:
        return float(self.core.progress[0])

    @property
    def time(self) -> float:
        return int(self.core.steps[0]) / STEPS_PER_SECOND

    @property
    def heading_radians(self) -> float:
        """The heading in radians, counter-clockwise on screen, 0 = east (as drawn)."""
        return float(self.core.yaw[0])

    def params(self) -> dict[str, Any]:
        return self.core.params(slice(0, 1))[0]

    def info(self) -> dict[str, Any]:
        return {key: value[0].item() for key, value in self.core.info().items()}

    def render(self) -> np.ndarray:
        return self.core.render(0)


_SCALARS = {"x": float, "y": float, "yaw": float, "heading": int, "speed": float, "steering": float,
            "score": float, "steps": int, "segment": int, "offtrack": bool, "lap_complete": bool,
            "center_offset": float, "travelled": float}
