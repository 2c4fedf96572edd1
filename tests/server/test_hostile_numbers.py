"""One user's numbers never break anyone's pages (issue 14, findings 5-7), through a real server.

A reward function's scores and messages are the user's: 1e308 a step sums to infinity, an error message may
hold a lone surrogate, an imported archive may claim any record or hold a huge document. Every answer stays
finite JSON in valid UTF-8, the leaderboard ranks only what this server evaluated, and its cost does not
depend on what users store.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pytest

V1 = "/api/v1"
SURROGATE = re.compile("[\ud800-\udfff]")


def strict(response: httpx.Response) -> Any:
    """The answer's JSON, read as a strict client would: UTF-8, no NaN/Infinity, no lone surrogates."""
    text = response.content.decode("utf-8")  # UnicodeDecodeError for bytes that are not UTF-8

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in {response.request.url}: {text[:300]}")

    value = json.loads(text, parse_constant=refuse)
    assert not SURROGATE.search(json.dumps(value, ensure_ascii=False)), text[:300]
    return value


def new_session(api: httpx.Client, reward: str | None = None, episodes: int = 3) -> str:
    session = "hn_" + uuid.uuid4().hex[:10]
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 1, "car_speed": 30})
    api.post(f"{V1}/write_agent_params", json={"session_id": session, "model_configuration": "[[5,9],[9,3]]",
                                                "num_episodes": episodes})
    if reward is not None:
        answer = api.post(f"{V1}/write_reward_fn", json={"session_id": session, "reward_function": reward})
        assert answer.status_code == 200, answer.text
    return session


def train_until_done(api: httpx.Client, session: str, timeout: float = 60) -> dict[str, Any]:
    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"{V1}/jobs/{session}")
        assert answer.status_code == 200, answer.text
        job = strict(answer)
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"session {session} did not finish training: {job}")


HUGE = "def reward_function(params):\n    return 1e308\n"
"""Finite, so it passes the check; a few steps sum to infinity."""
SURROGATE_ERROR = ("def reward_function(params):\n    if params['steps'] > 5:\n"
                   "        raise ValueError('bad \\ud800 value')\n    return 1\n")
"""Passes the check (steps <= 5 there), then raises with a lone surrogate in its message."""


# ----- finding 6: every number finite, every string valid UTF-8 ---------------------------------------------
def test_an_overflowing_score_leaves_jobs_events_and_files_finite(api: httpx.Client) -> None:
    session = new_session(api, HUGE)
    events: list[str] = []

    with api.stream("GET", f"{V1}/metrics/stream", params={"session_id": session}, timeout=60) as stream:
        job = train_until_done(api, session)
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(line[len("data: "):])
            if line.startswith("event: finished") or line.startswith("event: failed") or (
                    events and '"state":"finished"' in events[-1]):
                break
    assert job["state"] == "finished", job
    assert job["episode"] >= 1
    for score in (job["record"], job["last_score"]):
        assert score is None or abs(score) < float("inf")
    everyone = strict(api.get(f"{V1}/jobs"))  # the owner's list: every user's jobs
    assert any(listed["session_id"] == session for listed in everyone["jobs"])
    assert events and all(json.loads(event, parse_constant=lambda c: pytest.fail(c)) for event in events)
    scores = strict(api.get(f"{V1}/get_all_params", params={"session_id": session}))["training_metrics"]
    assert len(scores["plot_scores"]) >= 1 and all(isinstance(s, (int, float)) for s in scores["plot_scores"])
    assert strict(api.get(f"{V1}/get_all_sessions"))[session]["training_metrics"] == scores
    assert strict(api.get(f"{V1}/model_info", params={"session_id": session}))["status"] == 200


def test_a_surrogate_in_an_error_message_is_valid_utf8_in_every_answer(api: httpx.Client) -> None:
    session = new_session(api, SURROGATE_ERROR, episodes=50)
    job = train_until_done(api, session)
    assert job["state"] == "failed" and "bad \ufffd value" in job["error"], job
    assert any(listed["session_id"] == session and listed["error"] == job["error"]
               for listed in strict(api.get(f"{V1}/jobs"))["jobs"])

    raising = "def reward_function(params):\n    raise ValueError('bad \\ud800 value')\n"
    for path, body in (("check_reward_fn", {"reward_function": raising}),
                       ("write_training_params", {"session_id": session, "reward_function": raising}),
                       ("write_reward_fn", {"session_id": session, "reward_function": raising})):
        answer = api.post(f"{V1}/{path}", json=body)
        assert answer.status_code == 422, (path, answer.text)
        assert "bad \ufffd value" in strict(answer)["message"]
    # A lone surrogate in the request itself (JSON may escape one), in text the server echoes or stores.
    raw = '{"reward_function": "def reward_function(params):\\n    return 1  # \\ud800\\n"}'
    answer = api.post(f"{V1}/check_reward_fn", content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text
    strict(answer)
    raw = json.dumps({"session_id": session, "environment_name": "car\ud800", "environment_world": 1})
    answer = api.post(f"{V1}/write_env_params", content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text
    strict(answer)
    strict(api.get(f"{V1}/get_all_params", params={"session_id": session}))
