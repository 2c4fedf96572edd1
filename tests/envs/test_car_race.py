"""The car-race env through Gymnasium's public API: contract, physics, episodes, params, vector env."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rewards_api
from rewards_api.envs.car_race import (
    LEFT,
    RIGHT,
    SPEED,
    STRAIGHT,
    CarRaceEnv,
    CarRaceVectorEnv,
    default_step_limit,
)
from rewards_api.envs.pilot import pilot_actions
from rewards_api.envs.reward import PARAM_KEYS, RewardFunctionError
from rewards_api.envs.tracks import builtin_track, random_track

ENV_ID = rewards_api.ENV_ID


def make(**kwargs: Any) -> CarRaceEnv:
    return gym.make(ENV_ID, **kwargs).unwrapped  # type: ignore[return-value]


def make_vec(num_envs: int, **kwargs: Any) -> CarRaceVectorEnv:
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def drive_lap(env: CarRaceEnv, limit: int = 3000) -> dict[str, Any]:
    """Let the centre-line pilot drive one episode; return the last info plus how it ended."""
    env.reset(seed=0)
    for _ in range(limit):
        _, _, terminated, truncated, info = env.step(int(pilot_actions(env.car)[0]))
        if terminated or truncated:
            return {**info, "terminated": terminated, "truncated": truncated}
    raise AssertionError("the episode never ended")


# ----- the Gymnasium contract ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"random_start": True, "track": "random:3"}])
def test_gymnasium_check_env_passes(kwargs: dict[str, Any]) -> None:
    check_env(make(render_mode="rgb_array", **kwargs))


def test_spaces_are_the_five_radars_and_three_actions() -> None:
    env = make()
    assert env.observation_space == gym.spaces.Box(0, 200, (5,), np.float32)
    assert env.action_space == gym.spaces.Discrete(3)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (5,)
    assert set(info) == {"score", "progress", "lap_complete", "steps", "time", "offtrack", "speed"}
    assert info["speed"] == 1.0 and info["time"] == 0.0  # the classic car: 10 px a step of 0.1 s


def test_make_vec_gives_the_native_vector_env() -> None:
    env = make_vec(16, track=2)
    assert isinstance(env, CarRaceVectorEnv)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16, 5) and obs.dtype == np.float32
    assert env.single_action_space == gym.spaces.Discrete(3)
    obs, rewards, terminated, truncated, info = env.step(np.full(16, STRAIGHT))
    assert rewards.shape == terminated.shape == truncated.shape == (16,)
    assert info["score"].shape == (16,)


def test_bad_arguments_get_clear_errors() -> None:
    with pytest.raises(ValueError, match="training tracks are 1, 2, 3"):
        make(track=9)
    with pytest.raises(ValueError, match="render_mode"):
        CarRaceEnv(render_mode="ansi")
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be 0 \(left\), 1 \(right\) or 2"):
        env.step(3)
    venv = make_vec(4)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="4 integers"):
        venv.step(np.array([0, 1]))


# ----- physics ---------------------------------------------------------------------------------------
def test_the_car_moves_ten_pixels_and_turns_fifteen_degrees() -> None:
    env = make()
    env.reset(seed=0)
    car = env.car
    x0, y0, h0 = car.x, car.y, car.heading
    env.step(STRAIGHT)
    assert math.hypot(car.x - x0, car.y - y0) == pytest.approx(SPEED)
    assert car.heading == h0
    y_straight = car.y
    env.step(LEFT)
    assert car.heading == (h0 + 1) % 24
    # The start faces east (y grows downwards): a left turn moves the car up the screen.
    assert car.y < y_straight
    env.step(RIGHT)
    env.step(RIGHT)
    assert car.heading == (h0 - 1) % 24


def test_radars_on_the_start_straight_are_symmetric() -> None:
    obs, _ = make().reset(seed=0)
    half = builtin_track("training", 1).half_width
    assert obs[0] == pytest.approx(half / math.sin(math.radians(60)), abs=2)
    assert obs[1] == pytest.approx(half / math.sin(math.radians(30)), abs=2)
    assert obs[0] == pytest.approx(obs[4], abs=1) and obs[1] == pytest.approx(obs[3], abs=1)
    assert obs[2] > 150


# ----- episodes --------------------------------------------------------------------------------------
def test_leaving_the_asphalt_terminates_without_a_lap() -> None:
    env = make()
    env.reset(seed=0)
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(LEFT)
        if terminated:
            break
    assert terminated and not truncated
    assert info["lap_complete"] is False
    assert reward == 0.0  # the default reward is +1 only while the car is on the track
    assert info["score"] == info["steps"] - 1
    assert obs.min() == 0.0


@pytest.mark.parametrize(("mode", "number"), [("training", 1), ("training", 2), ("training", 3),
                                              ("evaluation", 1)])
def test_the_pilot_completes_a_lap_on_every_builtin_track(mode: str, number: int) -> None:
    result = drive_lap(make(track=number, mode=mode))
    assert result["terminated"] and result["lap_complete"] is True
    assert result["progress"] == 100.0
    assert result["score"] == result["steps"]


def test_the_pilot_completes_a_lap_on_twenty_random_tracks() -> None:
    for seed in range(100, 120):
        result = drive_lap(make(track=f"random:{seed}"))
        assert result["lap_complete"] is True, (seed, result)


@pytest.mark.parametrize("native", [True, False])
def test_the_step_limit_truncates(native: bool) -> None:
    # gym.make applies its own TimeLimit wrapper for max_episode_steps; the class has the limit built in.
    env = CarRaceEnv(max_episode_steps=5) if native else gym.make(ENV_ID, max_episode_steps=5)
    env.reset(seed=0)
    ends = [env.step(STRAIGHT)[2:4] for _ in range(5)]
    assert ends[:4] == [(False, False)] * 4
    assert ends[4] == (False, True)
    assert make().car.max_episode_steps == default_step_limit(builtin_track("training", 1))
    venv = make_vec(2, max_episode_steps=3)
    venv.reset(seed=0)
    assert [venv.step(np.full(2, STRAIGHT))[3].tolist() for _ in range(3)][-1] == [True, True]


def test_progress_grows_along_the_lap_and_never_from_driving_backwards() -> None:
    env = make(track=3)
    env.reset(seed=0)
    progress = []
    for _ in range(60):
        *_, info = env.step(int(pilot_actions(env.car)[0]))
        progress.append(info["progress"])
    assert progress == sorted(progress) and progress[-1] > 15
    env.reset(seed=0)
    for _ in range(12):  # a U-turn: left until facing west
        env.step(LEFT)
    assert env.car.offtrack or env.car.progress < 5


# ----- reward functions and params -------------------------------------------------------------------
def test_params_hold_every_key_with_sane_values() -> None:
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any]) -> float:
        seen.append(params)
        return 1.0

    env = make(track=2, reward_function=record)
    env.reset(seed=0)
    actions = []
    while True:
        action = int(pilot_actions(env.car)[0])
        actions.append(action)
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    track = builtin_track("training", 2)
    assert len(seen) == len(actions) > 100
    for step, (params, action) in enumerate(zip(seen, actions, strict=True), start=1):
        assert tuple(params) == PARAM_KEYS
        assert params["steps"] == step
        assert params["direction"] == {LEFT: -1, RIGHT: 1, STRAIGHT: 0}[action]
        assert params["steering_angle"] == {LEFT: 15.0, RIGHT: -15.0, STRAIGHT: 0.0}[action]
        assert params["rotational_velocity"] == 15.0 and params["speed"] == SPEED
        assert len(params["observation"]) == 5 and params["radars"] == params["observation"]
        assert all(0.0 <= r <= 200.0 for r in params["observation"])
        assert params["car_location"] == (params["x"], params["y"])
        assert -180.0 < params["heading"] <= 180.0 and params["heading"] % 15 == 0
        assert 0.0 <= params["progress"] <= 100.0
        assert params["track_width"] == track.width and params["track_length"] == track.length
        assert len(params["waypoints"]) == track.num_waypoints
        previous, following = params["closest_waypoints"]
        assert following == (previous + 1) % track.num_waypoints
        px, py = params["waypoints"][previous]
        assert math.hypot(params["x"] - px, params["y"] - py) < track.half_width + 2 * SPEED
        assert params["is_alive"] is (not params["is_offtrack"])
        if params["is_alive"]:
            assert params["distance_from_center"] <= track.half_width
        assert params["lap_time"] == step / 10 and params["is_reversed"] is False
        if params["distance_from_center"] + 12 < track.half_width:  # the wheels are within 11.4 px of it
            assert params["all_wheels_on_track"] is True
    assert seen[-1]["progress"] == 100.0
    assert [p["progress"] for p in seen] == sorted(p["progress"] for p in seen)


def test_is_left_of_center_follows_the_side_of_the_car() -> None:
    seen: list[dict[str, Any]] = []
    env = make(reward_function=lambda params: seen.append(params) or 0.0)
    env.reset(seed=0)
    env.step(LEFT)  # the start faces east: left is up the screen, towards smaller y
    env.step(STRAIGHT)
    assert seen[-1]["is_left_of_center"] is True and seen[-1]["distance_from_center"] > 0
    env.reset(seed=0)
    env.step(RIGHT)
    env.step(STRAIGHT)
    assert seen[-1]["is_left_of_center"] is False


def test_a_reward_given_as_source_shapes_the_rewards() -> None:
    source = "def reward_function(params):\n    return 1.0 - params['distance_from_center'] / 35\n"
    env = make(reward_function=source)
    env.reset(seed=0)
    _, on_line, *_ = env.step(STRAIGHT)
    env.step(LEFT)
    _, off_line, *_ = env.step(STRAIGHT)
    assert on_line == pytest.approx(1.0, abs=0.01)
    assert off_line < on_line


def test_a_failing_reward_function_names_the_problem_and_line_during_a_step() -> None:
    source = (
        "def reward_function(params):\n"
        "    if params['steps'] < 3:\n"
        "        return 1\n"
        "    return params['radars'][0] / 0\n"
    )
    env = make(reward_function=source)
    env.reset(seed=0)
    env.step(STRAIGHT)
    env.step(STRAIGHT)
    with pytest.raises(RewardFunctionError, match="ZeroDivisionError") as caught:
        env.step(STRAIGHT)
    assert caught.value.line == 4
    venv = make_vec(8, reward_function="def reward_function(params):\n    return None\n")
    venv.reset(seed=0)
    with pytest.raises(RewardFunctionError, match="returned None") as caught:
        venv.step(np.full(8, STRAIGHT))
    assert caught.value.line == 2


def test_a_reward_function_with_a_syntax_error_is_refused_when_the_env_is_made() -> None:
    with pytest.raises(RewardFunctionError, match="syntax error") as caught:
        make(reward_function="def reward_function(params):\n    return 1 +\n")
    assert caught.value.line == 2


# ----- determinism and the vector env ----------------------------------------------------------------
def rollout_single(seed: int, actions: np.ndarray, **kwargs: Any) -> list[tuple]:
    env = make(**kwargs)
    obs, info = env.reset(seed=seed)
    trace: list[tuple] = [("reset", obs.tolist(), info)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(int(action))
        trace.append((obs.tolist(), reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append(("reset", obs.tolist(), info))
    return trace


def test_the_same_seed_and_actions_give_the_same_trajectory() -> None:
    actions = np.random.default_rng(0).choice(3, size=400, p=[0.15, 0.15, 0.7])
    kwargs = {"random_start": True, "track": "random:11"}
    first = rollout_single(5, actions, **kwargs)
    assert first == rollout_single(5, actions, **kwargs)
    assert first != rollout_single(6, actions, **kwargs)  # the seed picks the random starts


@pytest.mark.parametrize("reward", [None, "def reward_function(params):\n"
                                          "    return params['progress'] - params['distance_from_center']\n"])
def test_vector_car_i_matches_a_single_env_seeded_with_seed_plus_i(reward: str | None) -> None:
    n, steps, seed = 6, 300, 40
    rng = np.random.default_rng(1)
    actions = rng.choice(3, size=(steps, n), p=[0.2, 0.2, 0.6])
    kwargs = {"random_start": True, "track": 2, "reward_function": reward}
    venv = make_vec(n, **kwargs)
    obs, info = venv.reset(seed=seed)
    vector_trace: list[list[tuple]] = [[("reset", obs[i].tolist(), _row(info, i))] for i in range(n)]
    pending = np.zeros(n, dtype=bool)
    for t in range(steps):
        obs, rewards, terminated, truncated, info = venv.step(actions[t])
        for i in range(n):
            if pending[i]:  # NextStep autoreset: this step was the reset, its action ignored
                vector_trace[i].append(("reset", obs[i].tolist(), _row(info, i)))
            else:
                vector_trace[i].append((obs[i].tolist(), float(rewards[i]), bool(terminated[i]),
                                        bool(truncated[i]), _row(info, i)))
        pending = terminated | truncated
    for i in range(n):
        # The single env sees only the actions the vector car acted on (not the ignored reset steps).
        acted = [actions[t, i] for t, entry in enumerate(vector_trace[i][1:]) if entry[0] != "reset"]
        single = rollout_single(seed + i, np.array(acted), **kwargs)
        assert single[: len(vector_trace[i])] == vector_trace[i]
    assert sum(entry[0] == "reset" for trace in vector_trace for entry in trace) > n  # resets happened


def _row(info: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    return {key: value[i].item() for key, value in info.items() if not key.startswith("_")}


def test_same_step_autoreset_reports_the_final_observation() -> None:
    venv = make_vec(3, autoreset_mode="SameStep")
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    start, _ = venv.reset(seed=0)
    for _ in range(50):
        obs, _, terminated, _, info = venv.step(np.array([LEFT, STRAIGHT, STRAIGHT]))
        if terminated[0]:
            break
    assert terminated[0] and info["_final_obs"][0]
    assert info["final_obs"][0].min() == 0.0  # the crash, on grass
    assert obs[0].tolist() == start[0].tolist()  # already back at the start line
    assert info["final_info"]["score"][0] > 0


def test_the_vector_env_renders_any_car() -> None:
    venv = make_vec(4, render_mode="rgb_array")
    venv.reset(seed=0)
    venv.step(np.array([LEFT, RIGHT, STRAIGHT, STRAIGHT]))
    frame = venv.render()
    assert frame.shape == (700, 800, 3) and frame.dtype == np.uint8
    assert not np.array_equal(venv.render_car_frame(1), frame)
    with pytest.raises(IndexError):
        venv.render_car_frame(4)


def test_random_tracks_work_in_both_envs() -> None:
    track = random_track(3)
    env = make(track="random:3")
    assert env.track is track
    venv = make_vec(2, track="random:3")
    assert venv.track is track


def test_reward_source_is_compiled_once_not_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from rewards_api.envs import car_race, reward

    source = "def reward_function(params):\n    return params['progress']\n"
    env = make(reward_function=source)
    venv = make_vec(4, reward_function=source)
    loaded = (env.car.reward_function.fn, venv.core.reward_function.fn)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("reward source loaded again while stepping")

    for module, name in [(reward, "compile_reward_source"), (reward, "load_reward_function"),
                         (car_race, "load_reward_function")]:
        monkeypatch.setattr(module, name, refuse)
    env.reset(seed=0)
    venv.reset(seed=0)
    for _ in range(20):
        env.step(STRAIGHT)
        venv.step(np.full(4, STRAIGHT))
    assert (env.car.reward_function.fn, venv.core.reward_function.fn) == loaded
    assert env.car.score > 0


def test_an_episode_can_start_at_any_waypoint() -> None:
    env = make(track=3)
    track = builtin_track("training", 3)
    env.reset(seed=0, options={"start_waypoint": 200})
    assert (env.car.x, env.car.y) == tuple(track.waypoints[200])
    result = {}
    while not result.get("terminated"):
        _, _, terminated, truncated, info = env.step(int(pilot_actions(env.car)[0]))
        result = {**info, "terminated": terminated or truncated}
    assert info["lap_complete"] is True  # a whole lap, measured from where the car started
    with pytest.raises(ValueError, match="start_waypoint"):
        env.reset(options={"start_waypoint": track.num_waypoints})
