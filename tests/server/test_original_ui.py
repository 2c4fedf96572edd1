"""The original React front end (rewards-ai/training-platform) against a real server: the exact requests its
code sends, and its answers read the way its code reads them.

- CreateModels.jsx posts ``model_configuration: JSON.stringify(sessionJson["model_configuration"])``, and
  its default.json holds the layers as text already: unless the slider moved, they arrive JSON-encoded twice.
- Models/utils.js deletes with ``POST /delete_session?session_id=`` (there is no Stop button; closing the
  video does not stop training) and pushes ``{session_id, user_id: user.id, user}`` with the signed-in
  Supabase user object.
- Leaderboard.jsx and Cell.jsx read ``leaderboard_data[i].score`` and
  ``leaderboard_data[i].user.identities[0].identity_data.{avatar_url, full_name, email}``.

The server runs with ``--no-auth``, as it does for the original UI (which sends no token).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, forked_children, start_server, stop_server
from test_evaluate import read_parts

from rewards_api.cloud import NO_BUCKET
from rewards_api.store import SessionStore, user_home
from rewards_api.users import UserRegistry

V1 = "/api/v1"
LONG = 100_000  # episodes: a training that only ends when it is stopped

# src/components/DisplayWIndow/default.json (the values that matter here).
DEFAULT_JSON: dict[str, Any] = {
    "environment_world": 1,
    "model_configuration": "[[5, 9], [9, 3]]",
    "reward_function": (
        'def reward_function(params):\n  reward = 0\n  if params["is_alive"]:\n'
        "    reward = 1\n  return reward"
    ),
}

# What supabase.auth.getUser() gives the UI for a user signed in with Google (ids and dates made up).
SIGNED_IN: dict[str, Any] = {
    "id": "8d0f9c4e-1b2a-4c3d-9e8f-0a1b2c3d4e5f",
    "aud": "authenticated",
    "role": "authenticated",
    "email": "ada@example.org",
    "email_confirmed_at": "2023-05-01T10:00:00.000000Z",
    "phone": "",
    "confirmed_at": "2023-05-01T10:00:00.000000Z",
    "last_sign_in_at": "2023-06-01T09:30:00.000000Z",
    "app_metadata": {"provider": "google", "providers": ["google"]},
    "user_metadata": {
        "avatar_url": "https://lh3.googleusercontent.com/a/ada=s96-c",
        "email": "ada@example.org",
        "email_verified": True,
        "full_name": "Ada Lovelace",
        "iss": "https://accounts.google.com",
        "name": "Ada Lovelace",
        "picture": "https://lh3.googleusercontent.com/a/ada=s96-c",
        "provider_id": "104842931207",
        "sub": "104842931207",
    },
    "identities": [
        {
            "identity_id": "5e1c2d3b-4a59-4f6e-8d7c-6b5a49382716",
            "id": "104842931207",
            "user_id": "8d0f9c4e-1b2a-4c3d-9e8f-0a1b2c3d4e5f",
            "identity_data": {
                "avatar_url": "https://lh3.googleusercontent.com/a/ada=s96-c",
                "email": "ada@example.org",
                "email_verified": True,
                "full_name": "Ada Lovelace",
                "iss": "https://accounts.google.com",
                "name": "Ada Lovelace",
                "sub": "104842931207",
            },
            "provider": "google",
            "last_sign_in_at": "2023-05-01T10:00:00.000000Z",
            "created_at": "2023-05-01T10:00:00.000000Z",
            "updated_at": "2023-06-01T09:30:00.000000Z",
            "email": "ada@example.org",
        }
    ],
    "created_at": "2023-05-01T10:00:00.000000Z",
    "updated_at": "2023-06-01T09:30:00.000000Z",
    "is_anonymous": False,
}


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server as the original UI uses it: no token, no bucket; two trainings at once."""
    running = start_server(tmp_path_factory.mktemp("original_ui") / "home", "--no-auth", "--max-jobs", "2")
    yield running
    stop_server(running)


@pytest.fixture
def api(ui: Server) -> Iterator[httpx.Client]:
    with ui.client(token=None) as client:
        yield client


def new_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def save_model(api: httpx.Client, session: str, agent: dict[str, Any], car_speed: int = 20) -> list[int]:
    """CreateModels.jsx's "Save Changes": its five requests in its order; their status codes."""
    answers = [api.get(f"{V1}/get_all_sessions"), api.post(f"{V1}/create_session?session_id={session}")]
    env = {
        "session_id": session,
        "environment_name": "car-race",
        "environment_world": DEFAULT_JSON["environment_world"] + 1,
        "mode": "training",
        "car_speed": car_speed,
    }
    answers.append(api.post(f"{V1}/write_env_params", json=env))
    answers.append(api.post(f"{V1}/write_agent_params", json={"session_id": session, **agent}))
    training = {
        "session_id": session,
        "learning_algorithm": "dqn",
        "enable_wandb": 0,
        "reward_function": DEFAULT_JSON["reward_function"],
    }
    answers.append(api.post(f"{V1}/write_training_params", json=training))
    return [answer.status_code for answer in answers]


def agent_body(**changes: Any) -> dict[str, Any]:
    """writeAgentParams' body with the hidden-layer slider untouched."""
    return {
        "model_configuration": json.dumps(DEFAULT_JSON["model_configuration"]),
        "learning_rate": 0.05,
        "loss_fn": "mae",
        "optimizer": "rmsprop",
        "gamma": 0.8,
        "epsilon": 35,
        "num_episodes": 250,
        **changes,
    }


def job(api: httpx.Client, session: str) -> dict[str, Any]:
    return api.get(f"{V1}/jobs/{session}").json()


def wait_until(check: Callable[[], Any], timeout: float = 60, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


SLOW = ("def reward_function(params):\n    total = 0\n    for i in range(120000):\n        total += i\n"
        "    return 1\n")
"""A reward function that takes ~6-10 ms a call, so that an evaluation lasts (well inside the check's
CPU budget of 20 s for the longest episode, even on a busy machine)."""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ----- 1. create a model with the default network ---------------------------------------------------------


def test_a_model_saved_with_the_default_network_keeps_every_setting(api: httpx.Client) -> None:
    session = new_name("default_net")
    sent = agent_body()
    assert sent["model_configuration"] == '"[[5, 9], [9, 3]]"'  # the layers' text, as a JSON string
    assert save_model(api, session, sent) == [200] * 5

    stored = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["agent_params"]
    assert stored == {**sent, "model_configuration": "[[5, 9], [9, 3]]"}  # kept as the layers' text
    # The training uses the user's settings, not the defaults (700 episodes).
    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    started = wait_until(lambda: (found := job(api, session))["episodes"] and found, what="the start")
    assert started["episodes"] == 250 and started["layers"] == [[5, 9], [9, 3]]
    api.get(f"{V1}/stop", params={"session_id": session})
    wait_until(lambda: job(api, session)["state"] == "stopped", what="the stop")

    # A third level of encoding is an error that names the parameter; nothing is stored.
    three = json.dumps(sent["model_configuration"])
    refused = api.post(
        f"{V1}/write_agent_params",
        json={"session_id": session, **agent_body(model_configuration=three, learning_rate=1)},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["parameter"] == "model_configuration"
    assert "JSON-encoded three times or more" in refused.json()["message"]
    after = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["agent_params"]
    assert after == stored


# ----- 2. delete a model while it trains, or is evaluated ---------------------------------------------------


def watch_once(api: httpx.Client, session: str) -> None:
    """TrainWindow's <img src=/stream>: one frame, then the video is closed (the training goes on)."""
    with api.stream("GET", f"{V1}/stream", params={"session_id": session}) as video:
        assert video.status_code == 200 and len(read_parts(video, 1)) == 1


def test_deleting_a_training_model_stops_it_and_touches_no_other(api: httpx.Client, ui: Server) -> None:
    doomed, other, queued = new_name("doomed"), new_name("other"), new_name("queued")
    for session in (doomed, other, queued):
        assert save_model(api, session, agent_body(num_episodes=LONG)) == [200] * 5
    watch_once(api, doomed)
    watch_once(api, other)
    assert api.post(f"{V1}/train", params={"session_id": queued}).json()["job"]["state"] == "queued"
    for session in (doomed, other):
        wait_until(lambda s=session: job(api, s)["episode"] >= 1, what=f"{session} to train")
    doomed_pid, other_before = job(api, doomed)["pid"], job(api, other)
    other_files = {path.relative_to(ui.home / other) for path in (ui.home / other).rglob("*.json")}

    # A queued training is dropped; a running one is stopped, its worker waited for, then the folder goes.
    for session in (queued, doomed):
        began = time.monotonic()
        deleted = api.post(f"{V1}/delete_session?session_id={session}")
        assert deleted.status_code == 200, deleted.text
        assert time.monotonic() - began < 20
        assert deleted.json()["message"] == f"session {session!r} deleted (its training was stopped first)"
        assert session not in api.get(f"{V1}/get_all_sessions").json()  # getList's Object.keys
        assert api.get(f"{V1}/jobs/{session}").status_code == 404  # no trace of its training
    assert not alive(doomed_pid)
    time.sleep(1.5)  # nothing of the deleted sessions writes into their folders any more
    assert not (ui.home / doomed).exists() and not (ui.home / queued).exists()
    assert not list(ui.home.glob(".deleted-*"))

    # The other session trains on, in the same process, and keeps its files.
    wait_until(lambda: job(api, other)["episode"] > other_before["episode"] + 1, what="the other to go on")
    now = job(api, other)
    assert now["state"] == "running" and now["pid"] == other_before["pid"]
    assert other_files <= {path.relative_to(ui.home / other) for path in (ui.home / other).rglob("*.json")}
    assert api.get(f"{V1}/stop", params={"session_id": other}).status_code == 200
    wait_until(lambda: job(api, other)["state"] == "stopped", what="the other to stop")
    assert api.get(f"{V1}/get_all_params", params={"session_id": other}).json()["training_metrics"][
        "plot_scores"
    ]
    # The id is free again: the UI may save a new model under it.
    assert save_model(api, doomed, agent_body()) == [200] * 5


def evaluable(api: httpx.Client, ui: Server, evaluated_session: Any, car_speed: int) -> str:
    session = new_name("judged")
    assert (
        save_model(api, session, agent_body(model_configuration='"[[5, 9], [9, 3]]"'), car_speed=car_speed)
        == [200] * 5
    )
    evaluated_session(SessionStore(ui.home), session, record=None)  # a model.pth of that network
    return session


def test_deleting_a_model_ends_its_evaluation_replay(
    api: httpx.Client, ui: Server, evaluated_session: Any
) -> None:
    session = evaluable(api, ui, evaluated_session, car_speed=1)  # a replay at 1 frame a second
    query = {"session_id": session, "mode": "evaluation", "track_num": 1, "num_trials": 5}
    with api.stream("GET", f"{V1}/evaluate", params=query) as replay:
        assert replay.status_code == 200
        chunks = replay.iter_bytes()
        while b"--frame" not in next(chunks):  # the replay has begun
            pass
        with httpx.Client(base_url=ui.url, timeout=30) as other_tab:
            assert other_tab.post(f"{V1}/delete_session?session_id={session}").status_code == 200
        began, frames = time.monotonic(), 0
        for chunk in chunks:
            frames += chunk.count(b"--frame")
            assert time.monotonic() - began < 10, "the replay went on after its session was deleted"
    assert frames <= 3
    assert not (ui.home / session).exists()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the evaluation's process in /proc")
def test_deleting_a_model_kills_its_evaluation_in_progress(
    api: httpx.Client, ui: Server, evaluated_session: Any
) -> None:
    session = evaluable(api, ui, evaluated_session, car_speed=20)
    # A reward of ~6-10 ms a call: 100 trials take seconds (a fork starts the evaluation in milliseconds).
    slow = api.post(f"{V1}/write_training_params", json={"session_id": session, "reward_function": SLOW})
    assert slow.status_code == 200, slow.text
    before = forked_children(ui.process.pid)
    answers: list[httpx.Response] = []
    body = {"session_id": session, "mode": "evaluation", "track_num": 1, "num_trials": 100}
    evaluation = threading.Thread(target=lambda: answers.append(api.post(f"{V1}/evaluate/", json=body)))
    evaluation.start()
    child = wait_until(lambda: forked_children(ui.process.pid) - before, timeout=30,
                       what="the evaluation process")
    deleted = api.post(f"{V1}/delete_session?session_id={session}")
    evaluation.join(timeout=60)
    assert deleted.status_code == 200
    assert not any(alive(pid) for pid in child)
    assert answers[0].status_code == 404
    assert answers[0].json()["message"] == f"session {session!r} was deleted during its evaluation"
    time.sleep(1)
    assert not (ui.home / session).exists()


# ----- 3 and 4. push a model as the signed-in user; the leaderboard page ----------------------------------


def cells(user_list: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Leaderboard.jsx (sort by score, best first) and Cell.jsx (what each row shows)."""
    rows = sorted(user_list["leaderboard_data"], key=lambda row: -row["score"])
    return [
        (
            row["user"]["identities"][0]["identity_data"]["full_name"],
            row["user"]["identities"][0]["identity_data"]["email"],
            row["user"]["identities"][0]["identity_data"]["avatar_url"],
            row["score"],
        )
        for row in rows
    ]


@pytest.fixture(scope="module")
def pushing(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server with a bucket (the S3 server's), as the original UI uses it: no token."""
    bucket = s3_server.new_bucket()
    home = tmp_path_factory.mktemp("original_ui_push") / "home"
    running = start_server(
        home, "--no-auth", "--s3-bucket", bucket, "--s3-endpoint-url", s3_server.url, env=s3_server.env()
    )
    yield running, bucket
    stop_server(running)


def test_push_as_the_signed_in_user_and_the_leaderboard_page_reads_the_rows(
    pushing: tuple[Server, str], s3_server: Any, evaluated_session: Any
) -> None:
    server, bucket = pushing
    store = SessionStore(server.home)
    evaluated_session(store, "ada_model", record=300.0, trials=5)  # final score 300 / 5
    evaluated_session(store, "bob_model", record=100.0, trials=5)
    evaluated_session(store, "eve_model", record=50.0, trials=5)
    with server.client(token=None) as api:
        # Models.jsx: handlePush(session_id, user.id, user, ...)
        pushed = api.post(
            f"{V1}/push_model",
            json={"session_id": "ada_model", "user_id": SIGNED_IN["id"], "user": SIGNED_IN},
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["summary"]["user"] == "Ada Lovelace"
        # The CLI and the web lab push with a name, as before.
        bob = {"session_id": "bob_model", "user_id": "bob", "user": "Bob"}
        by_name = api.post(f"{V1}/push_model", json=bob)
        assert by_name.status_code == 200 and by_name.json()["summary"]["user"] == "Bob"
        # An e-mail sign-up: no full name, no identity data; the page still has what it reads.
        eve = {"id": "0c6e5c4a-9d3b-4f1e-a2b7-3c8d9e0f1a2b", "email": "eve@example.org", "identities": []}
        assert (
            api.post(
                f"{V1}/push_model", json={"session_id": "eve_model", "user_id": eve["id"], "user": eve}
            ).status_code
            == 200
        )
        user_list = api.get(f"{V1}/get_user_list")
    assert user_list.status_code == 200
    assert cells(user_list.json()) == [
        ("Ada Lovelace", "ada@example.org", "https://lh3.googleusercontent.com/a/ada=s96-c", 60.0),
        ("Bob", "", "", 20.0),
        ("eve@example.org", "eve@example.org", "", 10.0),
    ]
    first = user_list.json()["leaderboard_data"][0]
    assert first["user"] == SIGNED_IN and first["name"] == "Ada Lovelace"  # the object that was pushed

    client = s3_server.client()

    def stored(key: str) -> Any:
        return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    assert stored(f"Models/{SIGNED_IN['id']}/ada_model/user.json") == SIGNED_IN
    assert set(stored("Models/bob/bob_model/user.json")) == {"user_id", "user", "session_id", "pushed_at"}


@pytest.mark.parametrize(
    ("user", "words"),
    [
        ({**SIGNED_IN, "user_metadata": {"full_name": 42}}, "user.user_metadata.full_name must be text"),
        (
            {**SIGNED_IN, "identities": [{"identity_data": {"email": ["a"]}}]},
            "user.identities[0].identity_data.email must be text",
        ),
        ({**SIGNED_IN, "identities": {"0": {}}}, "user.identities must be a list"),
        ({"id": "x", "deep": [[[[[[[[["too deep"]]]]]]]]]}, "nested more than 8 levels deep"),
        ({"id": "x", "bio": "x" * 20_000}, "at most 16384 are kept"),
        ({**SIGNED_IN, "access_token": "eyJhbGciOi"}, "holds 'access_token'"),
        (42, "or the signed-in user's object"),
    ],
)
def test_a_user_object_that_cannot_be_kept_is_refused_by_name(
    pushing: tuple[Server, str], user: Any, words: str
) -> None:
    server, _ = pushing
    with server.client(token=None) as api:
        body = {"session_id": "ada_model", "user_id": "u-1", "user": user}
        refused = api.post(f"{V1}/push_model", json=body)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["parameter"] == "user" and words in refused.json()["message"]


def test_without_a_bucket_the_leaderboard_page_shows_this_servers_sessions(
    api: httpx.Client, ui: Server, evaluated_session: Any
) -> None:
    mine, hers = new_name("mine"), new_name("hers")
    evaluated_session(SessionStore(ui.home), mine, record=400.0, trials=4)  # final score 100
    UserRegistry(ui.home).add("alice")
    evaluated_session(SessionStore(user_home(ui.home, "alice")), hers, record=250.0, trials=5)  # 50
    user_list = api.get(f"{V1}/get_user_list")
    assert user_list.status_code == 200
    rows = {row["session_id"]: row for row in user_list.json()["leaderboard_data"]}
    assert {mine, hers} <= set(rows)
    shown = [cell for cell in cells(user_list.json()) if cell[0] in ("owner", "alice")]
    assert shown[:2] == [("owner", "", "", 100.0), ("alice", "", "", 50.0)]
    assert rows[hers]["name"] == "alice" and rows[mine]["name"] == "owner"
    pushed = api.post(f"{V1}/push_model", json={"session_id": mine, "user_id": "u-1", "user": SIGNED_IN})
    assert pushed.status_code == 400 and pushed.json()["message"] == NO_BUCKET
