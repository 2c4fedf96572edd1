"""The original /api/v1 API on a real server: the original UI's sequence, shapes, errors and auth."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from test_evaluate import read_parts

V1 = "/api/v1"
TOKEN = "test-token-0123456789"  # the one the ``server`` fixture starts with
COMMAND = str(Path(sys.executable).parent / "rewards-api")
REWARD = "def reward_function(params):\n    return 1.0 if params['is_alive'] else 0.0\n"


def fresh_id() -> str:
    return "s_" + uuid.uuid4().hex[:12]


def test_the_original_ui_sequence(api: httpx.Client, server) -> None:
    before = api.get(f"{V1}/get_all_sessions").json()
    session = fresh_id()
    assert session not in before

    created = api.post(f"{V1}/create_session", params={"session_id": session})
    assert created.status_code == 200
    body = created.json()
    assert body["status"] == 200 and body["session_id"] == session
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", body["session_creation_date"])
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", body["session_creation_time"])
    root = server.home / session
    assert body["dir_paths"] == {"session_root_dir": str(root),
                                 "saved_models_dir": str(root / "session_saved_models")}
    assert body["json_paths"] == {
        "training_metrics": str(root / "training_metrics.json"),
        "evaluation_metrics": str(root / "evaluation_metrics.json"),
        "model_history": str(root / "session_saved_models" / "model_history.json"),
    }

    env = {"session_id": session, "environment_name": "car-race", "environment_world": 2, "mode": "training",
           "car_speed": 20}
    written = api.post(f"{V1}/write_env_params", json=env)
    assert written.status_code == 200 and written.json()["status"] == 200

    agent = {"session_id": session, "model_configuration": "[[5,49],[49,3]]", "learning_rate": 0.01,
             "loss_fn": "mse", "optimizer": "adam", "gamma": 90, "epsilon": 20, "num_episodes": 700}
    written = api.post(f"{V1}/write_agent_params", json=agent).json()
    assert written["status"] == 200 and written["last_trained"] == {}
    created_model = written["last_created"]
    assert {k: created_model[k] for k in ("loss", "optimizer", "gamma", "epsilon", "model_config")} == {
        "loss": "mse", "optimizer": "adam", "gamma": 90, "epsilon": 20, "model_config": "[[5,49],[49,3]]"}
    assert set(created_model) == {"date", "time", "loss", "optimizer", "gamma", "epsilon", "model_config"}

    training = {"session_id": session, "learning_algorithm": "dqn", "enable_wandb": 0,
                "reward_function": REWARD}
    written = api.post(f"{V1}/write_training_params", json=training)
    assert written.status_code == 200, written.text

    sessions = api.get(f"{V1}/get_all_sessions").json()
    assert "status" not in sessions and session in sessions
    assert set(sessions[session]) == {"env_params", "agent_params", "training_params", "training_metrics",
                                      "evaluation_metrics"}
    assert sessions[session]["env_params"] == {k: v for k, v in env.items() if k != "session_id"}

    everything = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()
    assert everything["status"] == 200
    assert everything["agent_params"] == {k: v for k, v in agent.items() if k != "session_id"}
    assert everything["training_params"] == {"learning_algorithm": "dqn", "enable_wandb": False,
                                             "reward_function": REWARD}
    assert everything["training_metrics"] == {"plot_scores": [], "plot_mean_scores": []}
    assert everything["evaluation_metrics"] == {"training": {"1": {}, "2": {}, "3": {}},
                                                "evaluation": {"1": {}}}

    # stream: watching starts the training; the frames are real JPEGs.
    with api.stream("GET", f"{V1}/stream", params={"session_id": session}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        frames = read_parts(response, 2)
    assert len(frames) == 2 and all(f[:3] == b"\xff\xd8\xff" and f[-2:] == b"\xff\xd9" for f in frames)
    deadline = time.monotonic() + 60
    while api.get(f"{V1}/jobs/{session}").json()["episode"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    stopped = api.get(f"{V1}/stop", params={"session_id": session}).json()
    assert stopped["status"] == 200 and set(stopped) == {"status", "message", "job"}
    while api.get(f"{V1}/jobs/{session}").json()["state"] not in ("stopped", "finished"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    trained = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()
    history = (root / "session_saved_models" / "model_history.json").read_text()
    assert trained["training_metrics"]["plot_scores"] and '"last_trained": {' in history
    with api.stream("POST", f"{V1}/evaluate/", json={"session_id": session, "mode": "training",
                                                     "track_num": 2, "num_trials": 1}) as response:
        assert response.status_code == 200 and len(read_parts(response, 1)) == 1
    evaluation = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["evaluation_metrics"]
    record = evaluation["training"]["2"]["record"]
    assert api.get(f"{V1}/final_eval_score", params={"session_id": session}).json() == {
        "status": 200, "score": pytest.approx(record, abs=1e-3)}

    deleted = api.post(f"{V1}/delete_session", params={"session_id": session})
    assert deleted.status_code == 200 and deleted.json()["status"] == 200 and "message" in deleted.json()
    assert not root.exists()


def test_the_agent_params_alias_and_reward_replacement(api: httpx.Client) -> None:
    session = fresh_id()
    api.post(f"{V1}/create_session", params={"session_id": session})
    agent = {"session_id": session, "model_configuration": [[5, 9], [9, 3]], "learning_rate": 0.5,
             "loss_fn": "huber", "optimizer": "rmsprop", "gamma": 0.9, "epsilon": 0.2, "num_episodes": 10}
    assert api.post(f"{V1}/write_agent_parameters", json=agent).json()["status"] == 200
    api.post(f"{V1}/write_training_params", json={"session_id": session, "learning_algorithm": "dqn",
                                                   "enable_wandb": True, "reward_function": REWARD})
    replaced = "def reward_function(params):\n    return params['progress']\n"
    assert api.post(f"{V1}/write_reward_fn", json={"session_id": session, "reward_function": replaced}
                    ).status_code == 200
    stored = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["training_params"]
    assert stored == {"learning_algorithm": "dqn", "enable_wandb": True, "reward_function": replaced}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_envs_and_tracks(api: httpx.Client, method: str) -> None:
    envs = api.request(method, f"{V1}/get_all_envs").json()
    assert {"name", "id", "description", "isReleased"} <= set(envs[0])
    assert [e["id"] for e in envs if e["isReleased"]] == ["car_racer"]
    assert api.request(method, f"{V1}/get_all_tracks").json() == ["track-1.png", "track-2.png", "track-3.png"]


def test_track_pictures(api: httpx.Client, server) -> None:
    picture = api.get(f"{V1}/tracks/track-2.png")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert api.get(f"{V1}/tracks/evaluation-track-1.png").status_code == 200
    missing = api.get(f"{V1}/tracks/track-9.png")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    # <img src> cannot send headers: the token in the URL works.
    assert httpx.get(f"{server.url}{V1}/tracks/track-1.png", params={"token": TOKEN}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "words"),
    [
        ("POST", "/create_session", {"params": {"session_id": "../etc"}}, 422, "session_id"),
        ("POST", "/create_session", {"params": {"session_id": "a" * 65}}, 422, "session_id"),
        ("POST", "/create_session", {}, 422, "session_id is required"),
        ("GET", "/get_all_params", {"params": {"session_id": "nobody_here"}}, 404, "no session 'nobody_here"),
        ("POST", "/delete_session", {"params": {"session_id": "nobody_here"}}, 404, "nobody_here"),
        ("POST", "/write_env_params", {"json": {"session_id": "nobody_here"}}, 404, "nobody_here"),
        ("POST", "/write_env_params", {"json": {"session_id": "x", "car_speed": 500}}, 422,
         "car_speed = 500"),
        ("POST", "/write_env_params",
         {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, ""),
        ("POST", "/write_env_params", {"json": [1, 2]}, 422, "JSON object"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_to_fix(api: httpx.Client, method: str, path: str, kwargs: dict,
                                                   status: int, words: str) -> None:
    response = api.request(method, V1 + path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and words in body["message"]


def test_bad_parameters_are_named(api: httpx.Client) -> None:
    session = fresh_id()
    api.post(f"{V1}/create_session", params={"session_id": session})
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 409
    agent = {"session_id": session, "model_configuration": "[[5,49],[49,3]]", "learning_rate": 60,
             "loss_fn": "mse", "optimizer": "adam", "gamma": 90, "epsilon": 20, "num_episodes": 700}
    refused = api.post(f"{V1}/write_agent_params", json=agent)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["parameter"] == "learning_rate"
    assert "learning_rate = 60 is not valid" in refused.json()["message"]
    bad = {"session_id": session,
           "reward_function": "def reward_function(params):\n    return params['nope']\n"}
    refused = api.post(f"{V1}/write_reward_fn", json=bad)
    assert refused.status_code == 422
    assert "KeyError" in refused.json()["message"] and "line 2" in refused.json()["message"]
    # Nothing already saved is lost.
    assert api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["agent_params"] == {}


def test_the_lists_see_files_that_another_program_writes(api: httpx.Client, server) -> None:
    session = fresh_id()
    api.post(f"{V1}/create_session", params={"session_id": session}).raise_for_status()
    env = {"environment_name": "car-race", "environment_world": 1, "mode": "training", "car_speed": 20}
    api.post(f"{V1}/write_env_params", json={"session_id": session, **env}).raise_for_status()
    time.sleep(2.2)  # settled (SETTLED_NS): from now on the server answers from its cache of the files
    for _ in range(2):
        assert api.get(f"{V1}/get_all_sessions").json()[session]["env_params"] == env
    path = server.home / session / "env_params.json"
    before = path.stat()
    # An atomic rewrite of the same size and modification time, then one in place that changes the size.
    replaced = path.read_text().replace('"car_speed": 20', '"car_speed": 30')
    path.with_name(".new").write_text(replaced)
    path.with_name(".new").replace(path)
    os.utime(path, ns=(before.st_mtime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    for speed in (30, 300):
        if speed == 300:
            with path.open("r+") as handle:
                handle.write(replaced.replace('"car_speed": 30', '"car_speed": 300'))
        listed = api.get(f"{V1}/get_all_sessions")
        assert listed.headers["content-type"] == "application/json"
        assert listed.json()[session]["env_params"] == {**env, "car_speed": speed}
        everything = api.get(f"{V1}/get_all_params", params={"session_id": session})
        assert everything.headers["content-type"] == "application/json"
        assert everything.json() == {"status": 200, **listed.json()[session]}


def test_auth_is_required_with_a_clear_message(server) -> None:
    for client in (server.client(token=None), server.client(token="wrong-token-123")):
        with client:
            refused = client.get(f"{V1}/get_all_sessions")
            assert refused.status_code == 401 and refused.json()["status"] == 401
            assert "token" in refused.json()["message"]
    assert httpx.get(f"{server.url}/health").json()["ok"] is True
    assert httpx.get(f"{server.url}{V1}/get_all_sessions", params={"token": TOKEN}).status_code == 200


def test_cors_lets_the_original_ui_in(server) -> None:
    preflight = httpx.options(f"{server.url}{V1}/create_session", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    other = httpx.options(f"{server.url}{V1}/create_session", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers


def test_the_openapi_document_lists_every_endpoint(server) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path in ("create_session", "delete_session", "write_env_params", "write_agent_params",
                 "write_agent_parameters", "write_training_params", "write_reward_fn", "get_all_params",
                 "get_all_sessions", "get_all_envs", "get_all_tracks", "tracks/{name}"):
        assert f"{V1}/{path}" in paths, path
    for path in ("stream", "train", "stop", "jobs", "jobs/{session_id}", "metrics/stream", "evaluate",
                 "evaluate/", "final_eval_score"):
        assert f"{V1}/{path}" in paths, path
    created = paths[f"{V1}/create_session"]["post"]["responses"]
    assert created["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/CreateSessionResponse")
    assert created["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "image/png" in paths[f"{V1}/tracks/{{name}}"]["get"]["responses"]["200"]["content"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_a_generated_token_is_kept_private_and_printed(tmp_path, launch) -> None:
    home = tmp_path / "home"
    running = launch(home)
    token_file = home / "server_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert f"?token={token}" in running.output.read_text()
    with running.client(token) as client:
        assert client.get(f"{V1}/get_all_sessions").status_code == 200


def test_no_auth_is_refused_off_loopback(tmp_path) -> None:
    result = subprocess.run([COMMAND, "--home", str(tmp_path), "serve", "--host", "0.0.0.0", "--no-auth"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "loopback" in result.stderr
