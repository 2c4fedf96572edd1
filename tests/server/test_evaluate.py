"""Evaluation over HTTP: computed in a worker process, recorded at once, streamed as real JPEG frames."""

from __future__ import annotations

import uuid

import httpx
import pytest

from rewards_api.agents.dqn import DQNSettings
from rewards_api.params import AgentParams
from rewards_api.runs.train import Trainer, TrainingOptions
from rewards_api.store import SessionStore

V1 = "/api/v1"


def read_parts(response: httpx.Response, count: int) -> list[bytes]:
    """The first ``count`` JPEG parts of an MJPEG response."""
    buffer, parts = b"", []
    for chunk in response.iter_bytes():
        buffer += chunk
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = buffer[:head_end].decode()
            length = int(next(line.split(":")[1] for line in head.split("\r\n")
                              if line.lower().startswith("content-length")))
            if len(buffer) < head_end + 4 + length + 2:
                break
            assert head.startswith("--frame") and "image/jpeg" in head
            parts.append(buffer[head_end + 4 : head_end + 4 + length])
            buffer = buffer[head_end + 4 + length + 2 :]
            if len(parts) == count:
                return parts
    return parts


@pytest.fixture
def trained(api: httpx.Client, server) -> str:
    session = "ev_" + uuid.uuid4().hex[:10]
    api.post(f"{V1}/create_session", params={"session_id": session})
    api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 1, "car_speed": 60})
    store = SessionStore(server.home)
    store.write_agent_params(session, AgentParams(num_episodes=20))
    options = TrainingOptions(num_cars=8, settings=DQNSettings(learning_starts=64, batch_size=32))
    Trainer(store, session, options).run()
    return session


def test_evaluation_streams_jpeg_frames_and_records_metrics_at_once(api: httpx.Client, trained: str) -> None:
    with api.stream("GET", f"{V1}/evaluate", params={"session_id": trained, "mode": "training",
                                                     "track_num": 2, "num_trials": 2}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        frames = read_parts(response, 3)
    assert len(frames) == 3
    assert all(frame[:2] == b"\xff\xd8" and frame[-2:] == b"\xff\xd9" for frame in frames)
    metrics = api.get(f"{V1}/get_all_params", params={"session_id": trained}).json()["evaluation_metrics"]
    assert metrics["session_id"] == trained and metrics["training"]["2"]["num_trials"] == 2

    with api.stream("POST", f"{V1}/evaluate/", json={"session_id": trained, "mode": "evaluation",
                                                     "track_num": 1, "num_trials": 1}) as response:
        assert response.status_code == 200 and len(read_parts(response, 1)) == 1
    metrics = api.get(f"{V1}/get_all_params", params={"session_id": trained}).json()["evaluation_metrics"]
    expected = (metrics["training"]["2"]["record"] / 2) + metrics["evaluation"]["1"]["record"]
    score = api.get(f"{V1}/final_eval_score", params={"session_id": trained}).json()
    assert score == {"status": 200, "score": pytest.approx(expected, abs=1e-3)}


def test_evaluation_errors_are_clear(api: httpx.Client) -> None:
    session = "ev_" + uuid.uuid4().hex[:10]
    api.post(f"{V1}/create_session", params={"session_id": session})
    untrained = api.get(f"{V1}/evaluate", params={"session_id": session})
    assert untrained.status_code == 409 and "train it first" in untrained.json()["message"]
    for params, word in [({"track_num": 7}, "track_num"), ({"mode": "racing"}, "mode"),
                         ({"mode": "evaluation", "track_num": 2}, "track_num")]:
        refused = api.get(f"{V1}/evaluate", params={"session_id": session, **params})
        assert refused.status_code == 422 and word in refused.json()["message"], refused.text
    assert api.get(f"{V1}/evaluate", params={"session_id": "nobody_here"}).status_code == 404
    assert api.get(f"{V1}/final_eval_score", params={"session_id": session}).json() == {"status": 200,
                                                                                        "score": 0.0}
