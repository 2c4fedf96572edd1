"""One user's numbers never break anyone's pages (issue 14, findings 5-7), through a real server.

A reward function's scores and messages are the user's: 1e308 a step sums to infinity, an error message may
hold a lone surrogate, an imported archive may claim any record or hold a huge document. Every answer stays
finite JSON in valid UTF-8, the leaderboard ranks only what this server evaluated, and its cost does not
depend on what users store.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid
import zipfile
from typing import Any

import httpx
import pytest
import torch

from rewards_api.agents.dqn import QNetwork
from rewards_api.store import SessionStore

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


# ----- findings 5 and 7: the leaderboard ranks what this server measured, from a small summary -----------
ONCE_HUGE = ("def reward_function(params):\n    if params['steps'] == 1:\n        return 1.7e308\n"
             "    return 0\n")
"""Finite everywhere: a trial's record is 1.7e308, and two of them sum to infinity."""


def with_model(server: Any, session: str) -> None:
    """An untrained model that always drives straight on (a trial ends in a few dozen steps)."""
    network = QNetwork([(5, 9), (9, 3)])
    with torch.no_grad():
        for tensor in network.parameters():
            tensor.zero_()
        network.layers[-1].bias[2] = 1.0
    torch.save(network.state_dict(), SessionStore(server.home).paths(session).model)


def evaluate(api: httpx.Client, session: str, mode: str) -> None:
    """Evaluate on track 1 of ``mode``: the metrics are recorded before the replay starts."""
    with api.stream("GET", f"{V1}/evaluate", params={"session_id": session, "mode": mode, "track_num": 1,
                                                    "num_trials": 1}) as answer:
        assert answer.status_code == 200, answer.read()


def board(api: httpx.Client) -> dict[str, dict[str, Any]]:
    answer = api.get(f"{V1}/leaderboard")
    assert answer.status_code == 200, answer.text
    return {entry["session_id"]: entry for entry in strict(answer)["leaderboard"]}


def with_document(archive: bytes, name: str, data: bytes) -> bytes:
    """``archive`` with member ``name`` replaced by ``data``, its manifest entry made to match."""
    source, buffer = zipfile.ZipFile(io.BytesIO(archive)), io.BytesIO()
    manifest = json.loads(source.read("manifest.json"))
    manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as rebuilt:
        rebuilt.writestr("manifest.json", json.dumps(manifest))
        for member in source.namelist():
            if member != "manifest.json":
                rebuilt.writestr(member, data if member == name else source.read(member))
    return buffer.getvalue()


def upload(api: httpx.Client, archive: bytes, session: str) -> httpx.Response:
    return api.post(f"{V1}/import", params={"session_id": session}, content=archive,
                    headers={"Content-Type": "application/zip"})


@pytest.fixture(scope="module")
def huge_session(server: Any) -> str:
    """A session evaluated on a training and the evaluation track: each record 1.7e308, their sum inf."""
    with server.client() as api:
        session = new_session(api, ONCE_HUGE)
        api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 1,
                                                  "car_speed": 60})
        with_model(server, session)
        evaluate(api, session, "training")
        evaluate(api, session, "evaluation")
    return session


def test_records_that_sum_to_infinity_rank_with_a_finite_score(api: httpx.Client, huge_session: str) -> None:
    entry = board(api)[huge_session]
    assert entry["record"] == 1.7e308 and entry["score"] == 1.7976931348623157e308
    final = strict(api.get(f"{V1}/final_eval_score", params={"session_id": huge_session}))
    assert final["score"] == 1.7976931348623157e308
    assert strict(api.get(f"{V1}/model_info", params={"session_id": huge_session}))["status"] == 200


def test_an_import_is_ranked_only_by_what_this_server_evaluated(api: httpx.Client, huge_session: str) -> None:
    exported = api.get(f"{V1}/export", params={"session_id": huge_session})
    assert exported.status_code == 200
    metrics = json.loads(zipfile.ZipFile(io.BytesIO(exported.content)).read("evaluation_metrics.json"))

    beyond = json.dumps({**metrics, "evaluation": {"1": {**metrics["evaluation"]["1"], "record": "R"}}})
    beyond = beyond.replace('"record": "R"', '"record": 1e999').encode()
    answer = upload(api, with_document(exported.content, "evaluation_metrics.json", beyond), "beyond")
    assert answer.status_code == 422 and "beyond the range" in strict(answer)["message"], answer.text

    for mode in ("training", "evaluation"):
        metrics[mode]["1"]["record"] = 123_456_789
    forged = with_document(exported.content, "evaluation_metrics.json", json.dumps(metrics).encode())
    answer = upload(api, forged, "forged")
    assert answer.status_code == 200, answer.text
    kept = strict(api.get(f"{V1}/get_all_params", params={"session_id": "forged"}))["evaluation_metrics"]
    assert kept["evaluation"]["1"]["record"] == 123_456_789  # the file as it came
    standings = board(api)
    assert "forged" not in standings and huge_session in standings  # not ranked until evaluated here
    evaluate(api, "forged", "evaluation")
    assert board(api)["forged"]["record"] == 1.7e308  # what this server measured, not the claim


def test_a_small_zip_of_a_huge_document_is_refused_and_the_board_never_reads_documents(
        api: httpx.Client, server: Any, huge_session: str) -> None:
    exported = api.get(f"{V1}/export", params={"session_id": huge_session}).content
    padded = b'{"training": {}, "evaluation": {}, "pad": "' + b" " * 20 * 2**20 + b'"}'
    bomb = with_document(exported, "evaluation_metrics.json", padded)
    assert len(bomb) < 65 * 2**10
    answer = upload(api, bomb, "bomb")
    assert answer.status_code == 413 and "evaluation_metrics.json" in strict(answer)["message"], answer.text
    assert "bomb" not in strict(api.get(f"{V1}/get_all_sessions"))

    # Whatever a session's evaluation document holds (here 20 MB that is not even JSON), the leaderboard
    # reads only each session's small summary, written when the evaluation was recorded.
    SessionStore(server.home).paths(huge_session).evaluation_metrics.write_bytes(b"[" * 20 * 2**20)
    started = time.monotonic()
    standings = board(api)
    assert time.monotonic() - started < 1.0
    assert standings[huge_session]["score"] == 1.7976931348623157e308
