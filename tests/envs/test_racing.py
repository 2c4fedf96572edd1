"""The racing car through Gymnasium: the grip limit, speed control, lap time, the new params, the spaces."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rewards_api
from rewards_api.envs.car_race import CarRaceEnv, CarRaceVectorEnv
from rewards_api.envs.physics import ACCELERATION, BRAKING, GRIP, PIXELS_PER_METRE, STEP_SECONDS, WHEELBASE
from rewards_api.envs.reference import reference_lap_time
from rewards_api.envs.reward import PARAM_KEYS
from rewards_api.envs.tracks import Track, track_from_control_points

ENV_ID = rewards_api.ENV_ID
RING_RADIUS = 200.0  # px, the control points' circle (the spline's is a little smaller)


def make(**kwargs: Any) -> CarRaceEnv:
    return gym.make(ENV_ID, **kwargs).unwrapped  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ring() -> Track:
    """A round track of one constant bend, 60 px wide."""
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    points = np.stack([400 + RING_RADIUS * np.cos(angles), 350 - RING_RADIUS * np.sin(angles)], axis=1)
    return track_from_control_points("ring", points, 60.0, (800, 700), start_index=0)


def drive_round(track: Track, speed: float, steps: int = 2000) -> dict[str, Any]:
    """Steer the continuous car at the ring's own curvature (the angle that follows its circle) at a
    constant commanded ``speed``; return the last info."""
    radius = float(np.median(track.curvature_radii())) / PIXELS_PER_METRE
    angle = math.degrees(math.atan(WHEELBASE / radius))  # counter-clockwise ring: steer left
    env = make(track=track, action_space="continuous")
    env.reset(seed=0)
    for _ in range(steps):
        *_, terminated, truncated, info = env.step(np.array([angle, speed], dtype=np.float32))
        if terminated or truncated:
            return info
    raise AssertionError("the episode never ended")


def test_below_the_cornering_speed_the_car_holds_the_bend_above_it_runs_wide(ring: Track) -> None:
    radius_m = float(np.median(ring.curvature_radii())) / PIXELS_PER_METRE
    cornering = math.sqrt(GRIP * radius_m)  # 3.4 m/s round this ring
    slow = drive_round(ring, 0.85 * cornering)
    assert slow["lap_complete"] is True and slow["offtrack"] is False
    fast = drive_round(ring, min(1.2 * cornering, 4.0))
    assert fast["lap_complete"] is False and fast["offtrack"] is True
    assert fast["progress"] < 50  # it ran wide in the first bend: the whole ring is one


def test_the_tyres_cap_the_lateral_acceleration(ring: Track) -> None:
    env = make(track=ring, action_space="continuous")
    env.reset(seed=0)
    for _ in range(15):  # full lock at full speed: the car turns only as much as the grip allows
        env.step(np.array([30.0, 4.0], dtype=np.float32))
        car = env.car
        turn_rate = math.radians(car.core.turned[0]) / STEP_SECONDS  # rad/s
        lateral = turn_rate * car.speed
        assert lateral <= GRIP * 1.06  # (the turn uses the step's mean speed)
        if car.speed > 2.0:
            assert car.steering < 30.0  # less than commanded: the grip ends first
    assert env.car.speed == pytest.approx(min(15 * ACCELERATION * STEP_SECONDS, 4.0))


def test_speed_follows_the_command_within_the_acceleration_and_braking_limits() -> None:
    env = make(action_space="discrete", actions=[{"steering_angle": 0, "speed": 4.0},
                                                 {"steering_angle": 0, "speed": 0.5}])
    obs, info = env.reset(seed=0)
    assert obs.shape == (6,) and obs[5] == 0.0 and info["speed"] == 0.0  # a standing start
    speeds = []
    for action in [0] * 15 + [1] * 4:
        obs, _, terminated, _, info = env.step(action)
        assert not terminated
        speeds.append(info["speed"])
        assert obs[5] == pytest.approx(info["speed"])
    gains = np.diff([0.0, *speeds])
    assert gains[:13] == pytest.approx([ACCELERATION * STEP_SECONDS] * 13)  # 3 m/s², 0.3 m/s a step
    assert speeds[13:15] == pytest.approx([4.0, 4.0])  # then it holds the top speed
    assert gains[15:] == pytest.approx([-BRAKING * STEP_SECONDS] * 4)  # braking at 6 m/s²


def test_lap_time_is_simulated_seconds_and_never_beats_the_reference_by_much(ring: Track) -> None:
    info = drive_round(ring, 0.9 * math.sqrt(GRIP * float(np.median(ring.curvature_radii())) / 100))
    assert info["lap_complete"] and info["time"] == info["steps"] / 10
    assert info["time"] >= 0.95 * reference_lap_time(ring)


def test_racing_params_are_the_real_speed_and_steering() -> None:
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any]) -> float:
        seen.append(params)
        return 1.0

    env = make(track=2, action_space="continuous", reward_function=record)
    env.reset(seed=0)
    for _ in range(8):
        env.step(np.array([10.0, 2.0], dtype=np.float32))
    for step, params in enumerate(seen, start=1):
        assert tuple(params) == PARAM_KEYS
        assert params["lap_time"] == step / 10 and params["is_reversed"] is False
        assert params["steering_angle"] == pytest.approx(10.0) and params["direction"] == -1  # left
        assert params["speed"] == pytest.approx(min(0.3 * step, 2.0))
    assert seen[0]["all_wheels_on_track"] is True
    assert seen[-1]["rotational_velocity"] > 0 and -180 < seen[-1]["heading"] <= 180


def test_wheels_off_the_edge_and_driving_the_wrong_way_are_seen() -> None:
    env = make(track=1, action_space="discrete")
    env.reset(seed=0)
    core = env.car.core
    track = env.track
    nx, ny = track.segments[0, 1], -track.segments[0, 0]  # the left of the start line's direction
    norm = math.hypot(nx, ny)
    inside = track.half_width - 4.0  # the centre is on the asphalt, the left wheels are not
    core.x[0] = track.waypoints[0, 0] + inside * nx / norm
    core.y[0] = track.waypoints[0, 1] + inside * ny / norm
    core._locate()
    params = env.car.params()
    assert params["is_alive"] is True and params["all_wheels_on_track"] is False
    core.x[0], core.y[0] = track.waypoints[3]
    core._locate()
    core.yaw[0] += math.pi  # facing back down the track
    assert env.car.params()["is_reversed"] is True and env.car.params()["all_wheels_on_track"] is True


@pytest.mark.parametrize("space", ["discrete", "continuous"])
def test_gymnasium_check_env_passes_for_the_racing_car(space: str) -> None:
    check_env(make(action_space=space, render_mode="rgb_array", random_start=True))


@pytest.mark.parametrize("space", ["discrete", "continuous"])
def test_single_and_vector_envs_drive_the_same_cars(space: str) -> None:
    num = 4
    vector: CarRaceVectorEnv = gym.make_vec(ENV_ID, num_envs=num, vectorization_mode="vector_entry_point",
                                            action_space=space, random_start=True, track=3)
    singles = [make(action_space=space, random_start=True, track=3) for _ in range(num)]
    obs, _ = vector.reset(seed=11)
    for i, env in enumerate(singles):
        single_obs, _ = env.reset(seed=11 + i)
        assert np.array_equal(single_obs, obs[i])
    rng = np.random.default_rng(0)
    done_singles = [False] * num
    for _ in range(120):
        if space == "discrete":
            actions = rng.integers(0, 15, num)
        else:
            actions = np.stack([rng.uniform(-30, 30, num), rng.uniform(0.5, 4, num)], axis=1)
            actions = actions.astype(np.float32)
        obs, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            if done_singles[i]:  # NextStep autoreset: the vector env resets this car on this step
                single_obs, _ = env.reset()
                done_singles[i] = False
                assert np.array_equal(single_obs, obs[i])
                continue
            single_obs, reward, term, trunc, single_info = env.step(actions[i])
            assert np.array_equal(single_obs, obs[i]) and reward == rewards[i]
            assert (term, trunc) == (terminated[i], truncated[i])
            assert single_info["speed"] == info["speed"][i] and single_info["time"] == info["time"][i]
            done_singles[i] = term or trunc


def test_racing_spaces_and_bad_actions() -> None:
    env = make(action_space="discrete")
    assert env.observation_space.shape == (6,) and env.observation_space.high[5] == 4.0
    assert env.action_space == gym.spaces.Discrete(15)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"an index 0\.\.14 into the session's actions"):
        env.step(15)
    continuous = make(action_space="continuous", speed_range=(1.0, 3.0))
    assert continuous.action_space.low.tolist() == [-30.0, 1.0]
    continuous.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[steering_angle, speed\]"):
        continuous.step(np.array([np.nan, 2.0]))
    with pytest.raises(ValueError, match="actions is for the 'discrete' action space"):
        make(action_space="continuous", actions=[(0, 1), (5, 2)])
    with pytest.raises(ValueError, match=r"actions\[1\].speed = 9"):
        make(action_space="discrete", actions=[(0, 1), (5, 9)])
    with pytest.raises(ValueError, match="action_space must be one of"):
        make(action_space="drift")
