"""A racing session through the real server: trained, watched, evaluated with lap times, its car changed."""

from __future__ import annotations

import io
import json
import time
import uuid

import httpx
from test_evaluate import read_parts

from rewards_api.agents.dqn import DQNSettings
from rewards_api.runs.train import Trainer, TrainingOptions
from rewards_api.store import SessionStore

V1 = "/api/v1"
SPEEDY = '''def reward_function(params):
    if not params["all_wheels_on_track"] or params["is_reversed"]:
        return 0.0
    return params["speed"] + params["lap_time"] * 0
'''


def racing_session(api: httpx.Client, server, actions: str = "-20:1.5, 0:2.5, 20:1.5",
                   world: int | str = 2, episodes: int = 24) -> str:
    session = "race_" + uuid.uuid4().hex[:10]
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    answer = api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": world,
                                                      "car_speed": 60, "action_space": "discrete",
                                                      "actions": actions})
    assert answer.status_code == 200, answer.text
    agent = {"session_id": session, "model_configuration": "[[6, 16], [16, 3]]", "learning_rate": 0.01,
             "loss_fn": "huber", "optimizer": "adam", "gamma": 0.9, "epsilon": 20, "num_episodes": episodes}
    assert api.post(f"{V1}/write_agent_params", json=agent).status_code == 200
    training = {"session_id": session, "learning_algorithm": "dqn", "enable_wandb": False,
                "reward_function": SPEEDY}
    assert api.post(f"{V1}/write_training_params", json=training).status_code == 200
    return session


def test_a_racing_session_trains_evaluates_with_lap_times_and_refuses_a_stale_model(api: httpx.Client,
                                                                                    server) -> None:
    session = racing_session(api, server, world="Speedway")  # a named training track, as the lab sends it
    assert json.loads((server.home / session / "env_params.json").read_text())["environment_world"] == \
        "speedway"
    store = SessionStore(server.home)
    options = TrainingOptions(num_cars=8, settings=DQNSettings(learning_starts=64, batch_size=32))
    finished = Trainer(store, session, options).run()
    assert finished.episodes == 24
    history = store.read(session, "model_history")
    assert history["runs"][-1]["track"] == "speedway"
    assert history["last_trained"]["car"]["action_space"] == "discrete"
    assert len(history["last_trained"]["car"]["actions"]) == 3

    with api.stream("GET", f"{V1}/evaluate", params={"session_id": session, "mode": "evaluation",
                                                     "track_num": 1, "num_trials": 2}) as response:
        assert response.status_code == 200
        frames = read_parts(response, 2)
    assert len(frames) == 2 and all(frame[:2] == b"\xff\xd8" for frame in frames)
    metrics = store.read(session, "evaluation_metrics")["evaluation"]["1"]
    assert metrics["num_trials"] == 2 and metrics["car"] == "discrete"
    assert metrics["off_track_count"] + metrics["laps_completed"] <= 2
    assert metrics["reference_lap_time"] > 5
    if metrics["laps_completed"]:
        assert metrics["best_lap_time"] > 0 and metrics["best_lap_ratio"] > 0.9
    else:
        assert metrics["best_lap_time"] is None and metrics["best_lap_ratio"] is None

    # Other actions with the same network shape: the saved model would steer with the wrong actions.
    answer = api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 2,
                                                      "car_speed": 60, "action_space": "discrete",
                                                      "actions": "-30:3, 0:4, 30:3"})
    assert answer.status_code == 200, answer.text
    stale = api.get(f"{V1}/evaluate", params={"session_id": session, "mode": "evaluation", "track_num": 1})
    assert stale.status_code == 409
    assert "model.pth was trained with other actions than the session's now" in stale.json()["message"]
    assert json.loads((server.home / session / "env_params.json").read_text())["actions"][0] == {
        "steering_angle": -30.0, "speed": 3.0}


def test_named_training_tracks_have_pictures_and_evaluation_tracks_stay_held_out(api: httpx.Client,
                                                                                  server) -> None:
    picture = api.get(f"{V1}/tracks/drag-strip.png")
    assert picture.status_code == 200 and picture.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert api.get(f"{V1}/tracks/moon.png").status_code == 404
    session = "race_" + uuid.uuid4().hex[:10]
    api.post(f"{V1}/create_session", params={"session_id": session})
    refused = api.post(f"{V1}/write_env_params",
                       json={"session_id": session, "environment_world": "gauntlet"})
    assert refused.status_code == 422
    assert "'gauntlet' is an evaluation track, held out from training" in refused.json()["message"]
    assert not (server.home / session / "env_params.json").exists()


def test_the_live_view_drives_the_racing_car(api: httpx.Client, server) -> None:
    session = racing_session(api, server, episodes=100_000)  # trains until stopped
    with api.stream("GET", f"{V1}/stream", params={"session_id": session}) as response:
        assert response.status_code == 200
        frames = read_parts(response, 3)
    assert len(frames) == 3 and all(frame[:2] == b"\xff\xd8" for frame in frames)
    api.get(f"{V1}/stop", params={"session_id": session})


def test_a_continuous_ppo_session_trains_evaluates_exports_and_pushes_through_the_server(
        api: httpx.Client, server, s3_server, monkeypatch) -> None:
    from test_training import wait_for

    from rewards_api.archive import import_session
    from rewards_api.cloud import open_bucket, push_session
    from rewards_api.config import Settings

    session = "ppo_" + uuid.uuid4().hex[:10]
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    answer = api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 2,
                                                      "car_speed": 60, "action_space": "continuous"})
    assert answer.status_code == 200, answer.text
    agent = {"session_id": session, "model_configuration": "[[6, 16], [16, 2]]", "learning_rate": 0.0003,
             "loss_fn": "huber", "optimizer": "adam", "gamma": 0.99, "epsilon": 20, "num_episodes": 300,
             "batch_size": 1024, "num_epochs": 2, "beta_entropy": 0.0, "rollout_length": 8, "clip_range": 0}
    refused = api.post(f"{V1}/write_agent_params", json=agent)
    assert refused.status_code == 422
    assert "clip_range = 0 is not valid: use a number greater than 0 and at most 1" in refused.text
    assert api.post(f"{V1}/write_agent_params", json={**agent, "clip_range": 0.2}).status_code == 200
    stored = json.loads((server.home / session / "agent_params.json").read_text())
    assert stored["clip_range"] == 0.2 and stored["rollout_length"] == 8 and "gae_lambda" not in stored
    training = {"session_id": session, "learning_algorithm": "ppo", "enable_wandb": False,
                "reward_function": SPEEDY}
    answer = api.post(f"{V1}/write_training_params", json=training)
    assert answer.status_code == 200 and answer.json()["message"] == "training_params.json written"

    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    finished = wait_for(api, session, ("finished", "failed"))
    assert finished["state"] == "finished", finished
    assert finished["episode"] == 300
    import torch

    store = SessionStore(server.home)
    state = torch.load(store.paths(session).model, weights_only=True)
    assert state["layers.2.weight"].shape == (2, 16)

    with api.stream("GET", f"{V1}/evaluate", params={"session_id": session, "mode": "evaluation",
                                                     "track_num": 1, "num_trials": 2}) as response:
        assert response.status_code == 200
        assert len(read_parts(response, 2)) == 2
    metrics = store.read(session, "evaluation_metrics")["evaluation"]["1"]
    assert metrics["num_trials"] == 2 and metrics["car"] == "continuous"

    archive = api.get(f"{V1}/export", params={"session_id": session})
    assert archive.status_code == 200
    copy = import_session(SessionStore(server.home.parent / "elsewhere"), io.BytesIO(archive.content))
    assert SessionStore(server.home.parent / "elsewhere").read(copy, "training_params")[
        "learning_algorithm"] == "ppo"

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = open_bucket(Settings(s3_bucket=s3_server.new_bucket(), s3_endpoint_url=s3_server.url))
    push_session(bucket, store, session, user_id="u-1", user="Ada")
    keys = {item["Key"] for item in s3_server.client().list_objects_v2(Bucket=bucket.name)["Contents"]}
    assert any(key.startswith(f"Models/u-1/{session}/") and key.endswith("model.pth") for key in keys), keys

    # Back to DQN: the server says what it means (and the continuous car cannot train with it).
    answer = api.post(f"{V1}/write_training_params", json={**training, "learning_algorithm": "dqn"})
    assert answer.status_code == 200
    assert "learning_algorithm changes from ppo to dqn: the next training starts a new dqn model" in \
        answer.json()["message"]
    refused = api.post(f"{V1}/train", params={"session_id": session})
    assert refused.status_code == 422 and "set learning_algorithm to 'ppo'" in refused.text


def test_the_live_view_drives_the_continuous_car_with_ppos_policy(api: httpx.Client, server) -> None:
    session = "live_" + uuid.uuid4().hex[:10]
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    answer = api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 2,
                                                      "car_speed": 60, "action_space": "continuous",
                                                      "speed_range": "1:3"})
    assert answer.status_code == 200, answer.text
    agent = {"session_id": session, "model_configuration": "[[6, 16], [16, 2]]", "learning_rate": 0.0003,
             "loss_fn": "mse", "optimizer": "adam", "gamma": 0.9, "epsilon": 20, "num_episodes": 100_000}
    assert api.post(f"{V1}/write_agent_params", json=agent).status_code == 200
    assert api.post(f"{V1}/write_training_params", json={
        "session_id": session, "learning_algorithm": "ppo", "enable_wandb": False,
        "reward_function": SPEEDY}).status_code == 200
    from test_training import wait_for

    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    wait_for(api, session, ("running",))
    deadline = time.monotonic() + 60
    while api.get(f"{V1}/jobs/{session}").json()["layers"] is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker says which network it trains once it has started
    assert api.get(f"{V1}/jobs/{session}").json()["layers"] == [[6, 16], [16, 2]]
    with api.stream("GET", f"{V1}/stream", params={"session_id": session}) as response:
        assert response.status_code == 200
        frames = read_parts(response, 3)  # the worker's actor drives: its outputs mapped onto the bounds
    assert len(frames) == 3 and all(frame[:2] == b"\xff\xd8" for frame in frames)
    assert api.get(f"{V1}/jobs/{session}").json()["state"] == "running"
    api.get(f"{V1}/stop", params={"session_id": session})
