"""``/push_model``, ``/get_user_list`` and ``/leaderboard`` through a real rewards server, against a real S3
API server (moto, see ``tests/conftest.py``) on loopback. The rewards server gets its AWS credentials only
through its environment, as the standard AWS chain reads them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TOKEN, Server, start_server, stop_server

from rewards_api.cloud import NO_BUCKET
from rewards_api.config import Settings
from rewards_api.server.app import create_app
from rewards_api.store import SessionStore
from rewards_api.users import UserRegistry

V1 = "/api/v1"


@dataclass
class Classroom:
    server: Server
    bucket: str
    owner: httpx.Client
    alice: httpx.Client


@pytest.fixture(scope="module")
def classroom(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    """A server pushing to a new bucket of the S3 server, with its owner and one user, alice."""
    bucket = s3_server.new_bucket()
    home = tmp_path_factory.mktemp("leaderboard") / "home"
    alice = UserRegistry(home).add("alice")
    settings = {"REWARDS_S3_BUCKET": bucket, "REWARDS_S3_ENDPOINT_URL": s3_server.url}  # as variables, here
    server = start_server(home, "--token", TOKEN, env={**s3_server.env(), **settings})
    with server.client() as owner, server.client(alice) as alice_client:
        yield Classroom(server, bucket, owner, alice_client)
    stop_server(server)


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_push_an_evaluated_session_then_both_leaderboards_rank_it(classroom: Classroom, s3_server: Any,
                                                                  evaluated_session: Any) -> None:
    owner, alice, home = classroom.owner, classroom.alice, classroom.server.home
    assert owner.post(f"{V1}/create_session", params={"session_id": "ada_car"}).status_code == 200
    evaluated_session(SessionStore(home), "ada_car", record=None)  # an untrained model, not evaluated yet
    with owner.stream("GET", f"{V1}/evaluate", params={"session_id": "ada_car", "mode": "evaluation",
                                                      "track_num": 1, "num_trials": 2}) as evaluation:
        assert evaluation.status_code == 200  # recorded before the first frame is sent
    score = owner.get(f"{V1}/final_eval_score", params={"session_id": "ada_car"}).json()["score"]

    pushed = owner.post(f"{V1}/push_model", json={"session_id": "ada_car", "user_id": "u-ada", "user": "Ada"})
    assert pushed.status_code == 200, pushed.text
    answer = pushed.json()
    prefix = "Models/u-ada/ada_car/"
    assert answer["status"] == 200 and answer["prefix"] == prefix and answer["bucket"] == classroom.bucket
    assert f"s3://{classroom.bucket}/{prefix}" in answer["message"]
    summary = answer["summary"]
    assert summary["score"] == score and summary["num_trials"] == 2 and summary["user"] == "Ada"
    evaluation_track = owner.get(f"{V1}/get_all_params", params={"session_id": "ada_car"}).json()[
        "evaluation_metrics"]["evaluation"]["1"]
    figures = ("record", "laps_completed", "mean_progress", "best_lap_time", "best_lap_ratio",
               "reference_lap_time", "car")
    assert {key: summary[key] for key in figures} == {key: evaluation_track[key] for key in figures}
    assert summary["car"] == "classic" and summary["reference_lap_time"] > 0

    client = s3_server.client()
    listed = sorted(item["Key"] for item in client.list_objects_v2(Bucket=classroom.bucket)["Contents"])
    assert listed == sorted(answer["keys"]) == sorted(prefix + name for name in (
        "agent_params.json", "training_metrics.json", "evaluation_metrics.json",
        "session_saved_models/model_history.json", "session_saved_models/model.pth", "user.json",
        "summary.json"))
    for name in ("evaluation_metrics.json", "session_saved_models/model.pth"):
        stored = client.get_object(Bucket=classroom.bucket, Key=prefix + name, ChecksumMode="ENABLED")
        local = (home / "ada_car" / name).read_bytes()
        assert stored["Body"].read() == local and stored["ChecksumSHA256"] == sha256(local)
    user = json.loads(client.get_object(Bucket=classroom.bucket, Key=prefix + "user.json")["Body"].read())
    assert user == {"user_id": "u-ada", "user": "Ada", "session_id": "ada_car",
                    "pushed_at": summary["pushed_at"]}
    stored_summary = client.get_object(Bucket=classroom.bucket, Key=prefix + "summary.json")["Body"].read()
    assert json.loads(stored_summary) == summary

    # alice, a user of this server, pushes a better session of hers under her own name.
    assert alice.post(f"{V1}/create_session", params={"session_id": "zoom"}).status_code == 200
    evaluated_session(SessionStore(home / ".users" / "alice"), "zoom", record=1000.0, laps=5, progress=100.0)
    assert alice.post(f"{V1}/create_session", params={"session_id": "draft"}).status_code == 200
    pushed = alice.post(f"{V1}/push_model", json={"session_id": "zoom", "user_id": "alice", "user": "Alice"})
    assert pushed.status_code == 200, pushed.text

    users = owner.get(f"{V1}/get_user_list")
    assert users.status_code == 200

    def named(name: str) -> dict[str, Any]:  # a push made with a name: the original UI's shape of a user
        return {"email": "", "user_metadata": {"full_name": name, "avatar_url": ""},
                "identities": [{"identity_data": {"full_name": name, "email": "", "avatar_url": ""}}]}

    assert users.json() == {"status": 200, "leaderboard_data": [
        {"user": named("Alice"), "name": "Alice", "score": 200.0, "session_id": "zoom"},
        {"user": named("Ada"), "name": "Ada", "score": score, "session_id": "ada_car"}]}

    board = alice.get(f"{V1}/leaderboard").json()  # a classroom's: everyone sees everyone's standings
    assert board["bucket"] == classroom.bucket and board["bucket_error"] is None
    rows = [(row["rank"], row["user"], row["session_id"], row["source"]) for row in board["leaderboard"]]
    assert rows == [(1, "Alice", "zoom", "bucket"), (2, "alice", "zoom", "local"),
                    (3, "Ada", "ada_car", "bucket"), (4, None, "ada_car", "local")]  # "draft": not evaluated
    best = board["leaderboard"][1]
    assert best == {"rank": 2, "user": "alice", "session_id": "zoom", "score": 200.0, "record": 1000.0,
                    "laps_completed": 5, "mean_progress": 100.0, "num_trials": 5, "source": "local",
                    "pushed_at": None, "best_lap_time": None, "best_lap_ratio": None,
                    "reference_lap_time": None, "car": None, "algorithm": None}  # evaluated before lap times
    assert owner.get(f"{V1}/leaderboard").json() == board


def test_push_model_refuses_what_it_cannot_push(classroom: Classroom, evaluated_session: Any) -> None:
    owner, alice = classroom.owner, classroom.alice
    missing = owner.get(f"{V1}/get_all_params", params={"session_id": "nobody_has_it"})

    def push(client: httpx.Client, **body: Any) -> httpx.Response:
        return client.post(f"{V1}/push_model", json={"user_id": "alice", "user": "Alice", **body})

    unknown = push(owner, session_id="nobody_has_it")
    assert (unknown.status_code, unknown.json()["message"]) == (404, missing.json()["message"])
    evaluated_session(SessionStore(classroom.server.home), "owners_only")
    theirs = push(alice, session_id="owners_only")  # the owner's session: for alice it does not exist
    assert theirs.status_code == 404
    assert theirs.json()["message"] == missing.json()["message"].replace("nobody_has_it", "owners_only")

    evaluated_session(SessionStore(classroom.server.home / ".users" / "alice"), "hers")
    impostor = push(alice, session_id="hers", user_id="u-ada")
    assert impostor.status_code == 403 and "push with user_id 'alice'" in impostor.json()["message"]

    assert owner.post(f"{V1}/create_session", params={"session_id": "untrained"}).status_code == 200
    untrained = push(owner, session_id="untrained")
    assert untrained.status_code == 409 and "no trained model yet" in untrained.json()["message"]
    evaluated_session(SessionStore(classroom.server.home), "unevaluated", record=None)
    unevaluated = push(owner, session_id="unevaluated")
    assert unevaluated.status_code == 409
    assert "evaluate it first" in unevaluated.json()["message"]
    assert "mode=evaluation" in unevaluated.json()["message"]

    for body, parameter in [({"user_id": "../etc"}, "user_id"), ({"user": ""}, "user"),
                            ({"session_id": "a/b"}, "session_id")]:
        refused = push(owner, **{"session_id": "hers", **body})
        assert refused.status_code == 422 and refused.json()["errors"][0]["parameter"] == parameter


def test_without_a_bucket_push_says_how_to_set_one(tmp_path: Path) -> None:
    # In process, without the app's lifespan (no trainings here): a third server would only add start-up time.
    app = create_app(Settings(home=tmp_path / "home", s3_bucket=None, web_ui=False), TOKEN)

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rewards",
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            body = {"session_id": "any", "user_id": "u-1", "user": "Ada"}
            return [await api.post(f"{V1}/push_model", json=body), await api.get(f"{V1}/get_user_list"),
                    await api.get(f"{V1}/leaderboard"), await api.get("/openapi.json")]

    pushed, users, board, openapi = asyncio.run(ask())
    assert pushed.status_code == 400 and pushed.json()["message"] == NO_BUCKET
    assert users.json() == {"status": 200, "leaderboard_data": []}  # this server's: nothing evaluated here
    assert board.json() == {"status": 200, "leaderboard": [], "bucket": None, "bucket_error": None}
    paths = openapi.json()["paths"]
    for path, method in (("push_model", "post"), ("get_user_list", "get"), ("leaderboard", "get")):
        assert method in paths[f"{V1}/{path}"], path
    responses = paths[f"{V1}/push_model"]["post"]["responses"]
    assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PushModelResponse")
    assert {"400", "403", "404", "409", "422", "502", "503"} <= set(responses)


def test_storage_problems_are_clear_errors_and_the_local_board_stays(launch_s3: Any, tmp_path: Any,
                                                                    evaluated_session: Any) -> None:
    """One server, its storage failing three ways in turn: a bucket that does not exist (then does),
    credentials the storage no longer knows (a revoked key), and storage that is gone."""
    storage = launch_s3()
    home = tmp_path / "home"
    evaluated_session(SessionStore(home), "mine")
    server = start_server(home, "--token", TOKEN, "--s3-bucket", "rewards-later", "--s3-endpoint-url",
                          storage.url, env=storage.env())
    body = {"session_id": "mine", "user_id": "u-1", "user": "Ada"}
    try:
        with server.client() as api:
            def answers(status: int, words: str) -> None:
                pushed = api.post(f"{V1}/push_model", json=body)
                users = api.get(f"{V1}/get_user_list")
                for answer in (pushed, users):
                    assert answer.status_code == status and words in answer.json()["message"], answer.text
                assert "s3://rewards-later" in pushed.json()["message"]
                board = api.get(f"{V1}/leaderboard").json()  # the local standings stay
                standings = [(row["session_id"], row["source"]) for row in board["leaderboard"]]
                assert standings == [("mine", "local")]
                assert words in board["bucket_error"]

            answers(502, "the bucket 'rewards-later' does not exist there: create it (e.g. `aws s3 mb "
                    "s3://rewards-later`), or choose an existing bucket with --s3-bucket NAME")
            storage.client().create_bucket(Bucket="rewards-later")
            assert api.post(f"{V1}/push_model", json=body).status_code == 200
            assert len(api.get(f"{V1}/get_user_list").json()["leaderboard_data"]) == 1

            storage.client("iam").delete_access_key(UserName="rewards", AccessKeyId=storage.access_key_id)
            answers(502, "the S3 storage refused the server's AWS credentials (InvalidAccessKeyId")
            assert "AWS_ACCESS_KEY_ID" in api.get(f"{V1}/get_user_list").json()["message"]

            storage.stop()
            answers(503, f"the storage cannot be reached (Could not connect to the endpoint URL: "
                    f"\"{storage.url}/rewards-later")
    finally:
        stop_server(server)
    assert storage.secret_access_key not in server.output.read_text()
