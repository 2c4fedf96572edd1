"""Training over HTTP on a real server: live MJPEG, events, jobs, stop, queue, failures."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx
from test_evaluate import read_parts

V1 = "/api/v1"


def new_session(api: httpx.Client, episodes: int, reward: str | None = None) -> str:
    session = "tr_" + uuid.uuid4().hex[:10]
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 1, "car_speed": 30})
    api.post(f"{V1}/write_agent_params", json={"session_id": session, "model_configuration": "[[5,9],[9,3]]",
                                                "learning_rate": 0.01, "loss_fn": "mse", "optimizer": "adam",
                                                "gamma": 90, "epsilon": 20, "num_episodes": episodes})
    if reward is not None:
        written = api.post(f"{V1}/write_reward_fn", json={"session_id": session, "reward_function": reward})
        assert written.status_code == 200, written.text
    return session


def job(api: httpx.Client, session: str) -> dict[str, Any]:
    return api.get(f"{V1}/jobs/{session}").json()


def wait_for(api: httpx.Client, session: str, states: tuple[str, ...], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job(api, session)
        if current.get("state") in states:
            return current
        time.sleep(0.2)
    raise AssertionError(f"{session} never reached {states}: {job(api, session)}")


def test_watching_starts_training_and_leaving_does_not_stop_it(api: httpx.Client) -> None:
    session = new_session(api, episodes=400)
    with api.stream("GET", f"{V1}/stream", params={"session_id": session}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        frames = read_parts(response, 3)
    assert len(frames) == 3 and all(f[:2] == b"\xff\xd8" for f in frames)
    assert len(set(frames)) > 1  # the picture moves
    finished = wait_for(api, session, ("finished",))
    assert finished["episode"] == 400 and finished["record"] is not None
    everything = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()
    assert len(everything["training_metrics"]["plot_scores"]) == 400


def test_two_viewers_share_one_run_and_the_stream_ends_with_it(api: httpx.Client) -> None:
    session = new_session(api, episodes=300)
    counts: list[int] = []

    def watch() -> None:
        with api.stream("GET", f"{V1}/stream", params={"session_id": session}) as response:
            counts.append(len(read_parts(response, 10_000)))  # until the stream ends

    viewers = [threading.Thread(target=watch) for _ in range(2)]
    for viewer in viewers:
        viewer.start()
    for viewer in viewers:
        viewer.join(timeout=120)
    assert len(counts) == 2 and all(count >= 1 for count in counts)
    assert [j["session_id"] for j in api.get(f"{V1}/jobs").json()["jobs"]].count(session) == 1
    assert job(api, session)["state"] == "finished"


def test_train_follow_and_stop(api: httpx.Client, server) -> None:
    session = new_session(api, episodes=100_000)
    started = api.post(f"{V1}/train", params={"session_id": session}).json()
    assert started["status"] == 200 and started["job"]["state"] in ("queued", "running")
    assert api.post(f"{V1}/train", params={"session_id": session}).json()["job"]["queued_at"] == \
        started["job"]["queued_at"]  # the same job, not a second one
    kinds: list[str] = []
    with api.stream("GET", f"{V1}/metrics/stream", params={"session_id": session}) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        for line in events.iter_lines():
            if line.startswith("data: "):
                item = json.loads(line[6:])
                kinds.append(item["kind"])
                if kinds.count("episode") >= 5:
                    break
    assert kinds.count("episode") >= 5
    stopped = api.get(f"{V1}/stop", params={"session_id": session}).json()
    assert stopped["status"] == 200
    final = wait_for(api, session, ("stopped",))
    assert final["episode"] > 0
    assert (server.home / session / "session_saved_models" / "model.pth").exists()
    assert api.post(f"{V1}/delete_session", params={"session_id": session}).status_code == 200


def test_a_failing_reward_function_fails_the_job_and_the_server_carries_on(api: httpx.Client) -> None:
    reward = ("def reward_function(params):\n    if params['steps'] > 20:\n"
              "        return params['radars'][9]\n    return 1\n")
    session = new_session(api, episodes=100_000, reward=reward)
    api.post(f"{V1}/train", params={"session_id": session})
    failed = wait_for(api, session, ("failed",))
    assert "IndexError" in failed["error"] and "line 3" in failed["error"]
    assert api.get("/health").json()["ok"] is True


def test_unknown_sessions_and_jobs(api: httpx.Client) -> None:
    for path in ("/stream", "/stop", "/metrics/stream"):
        assert api.get(V1 + path, params={"session_id": "nobody_here"}).status_code == 404, path
    assert api.post(f"{V1}/train", params={"session_id": "nobody_here"}).status_code == 404
    assert api.get(f"{V1}/jobs/nobody_here").status_code == 404


def test_jobs_beyond_max_jobs_wait_in_a_queue(tmp_path, launch) -> None:
    server = launch(tmp_path / "home", "--token", "queue-token-123", "--max-jobs", "1")
    with server.client("queue-token-123") as api:
        first, second = new_session(api, 100_000), new_session(api, 100_000)
        api.post(f"{V1}/train", params={"session_id": first})
        wait_for(api, first, ("running",))
        assert api.post(f"{V1}/train", params={"session_id": second}).json()["job"]["state"] == "queued"
        time.sleep(1)
        assert job(api, second)["state"] == "queued"
        api.get(f"{V1}/stop", params={"session_id": first})
        wait_for(api, second, ("running",))
        api.get(f"{V1}/stop", params={"session_id": second})
        wait_for(api, second, ("stopped",))



def model_history(server, session: str) -> dict[str, Any]:
    return json.loads((server.home / session / "session_saved_models" / "model_history.json").read_text())


def test_training_again_continues_the_model_unless_fresh(api: httpx.Client, server) -> None:
    documented = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path, method in (("/train", "post"), ("/stream", "get")):
        names = [p["name"] for p in documented[V1 + path][method]["parameters"]]
        assert "fresh" in names, path
    session = new_session(api, episodes=30)
    api.post(f"{V1}/train", params={"session_id": session})
    assert wait_for(api, session, ("finished",))["episode"] == 30
    api.post(f"{V1}/write_agent_params", json={"session_id": session, "model_configuration": "[[5,9],[9,3]]",
                                                "num_episodes": 100_000})  # the same network: runs are kept
    assert [run["start"] for run in model_history(server, session)["runs"]] == ["fresh"]

    with api.stream("GET", f"{V1}/stream", params={"session_id": session, "fresh": "true"}) as response:
        assert response.status_code == 200 and len(read_parts(response, 1)) == 1
    running = job(api, session)
    assert running["state"] in ("queued", "running")
    again = api.post(f"{V1}/train", params={"session_id": session, "fresh": "true"}).json()["job"]
    assert again["queued_at"] == running["queued_at"]  # already training: the same job, not a new one
    deadline = time.monotonic() + 60
    while job(api, session)["episode"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    api.get(f"{V1}/stop", params={"session_id": session})
    stopped = wait_for(api, session, ("stopped",))
    # A new model: its own history, its episodes counted from 0 (a warm start would add a second run).
    entries = model_history(server, session)["runs"]
    assert [(run["start"], run["track"]) for run in entries] == [("fresh", "training-1")]
    assert entries[0]["episodes"] == stopped["episode"] > 0
    metrics = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["training_metrics"]
    assert len(metrics["plot_scores"]) == stopped["episode"]
