"""Pushing sessions to S3 and reading the bucket's leaderboard, against a real S3 API server (moto's server
mode, see ``tests/conftest.py``) on loopback; credentials reach boto3 only through the environment."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pydantic
import pytest
import torch

from rewards_api.agents.dqn import QNetwork
from rewards_api.cloud import (
    NO_BUCKET,
    CloudError,
    Standing,
    bucket_leaderboard,
    check_user_profile,
    display_name,
    leaderboard_user,
    open_bucket,
    push_session,
)
from rewards_api.config import Settings
from rewards_api.params import EnvParams, TrainingParams, first_error_message
from rewards_api.store import SessionNotFound, SessionStore

COMMAND = str(Path(sys.executable).parent / "rewards-api")


@pytest.fixture
def aws(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The S3 server, with its credentials in this process's environment (the AWS chain's first link)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


def sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_push_uploads_the_session_with_verified_checksums(aws: Any, store: SessionStore,
                                                           evaluated_session: Any) -> None:
    evaluated_session(store, "fast_car", record=120.0, laps=2, progress=80.0, trials=4)
    store.write_env_params("fast_car", EnvParams(environment_world=2))
    store.write_training_params("fast_car", TrainingParams())
    store.update("fast_car", "evaluation_metrics",
                 lambda document: document["training"].update({"2": {"num_trials": 2, "record": 10.0}}))
    bucket = open_bucket(Settings(s3_bucket=aws.new_bucket(), s3_endpoint_url=aws.url))

    pushed = push_session(bucket, store, "fast_car", user_id="u-1", user=" Ada ",
                          now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc))

    prefix = "Models/u-1/fast_car/"
    assert pushed.url == f"s3://{bucket.name}/{prefix}"
    session_files = ["env_params.json", "agent_params.json", "training_params.json", "training_metrics.json",
                     "evaluation_metrics.json", "session_saved_models/model_history.json",
                     "session_saved_models/model.pth"]
    client = aws.client()
    listed = [item["Key"] for item in client.list_objects_v2(Bucket=bucket.name)["Contents"]]
    assert sorted(listed) == sorted(pushed.keys) == sorted(prefix + name for name in
                                                           [*session_files, "user.json", "summary.json"])
    root = store.paths("fast_car").root
    for name in session_files:
        stored = client.get_object(Bucket=bucket.name, Key=prefix + name, ChecksumMode="ENABLED")
        local = (root / name).read_bytes()
        assert stored["Body"].read() == local, name
        assert stored["ChecksumSHA256"] == sha256(local), name  # kept with the object, checked on reads
    model = client.get_object(Bucket=bucket.name, Key=prefix + "session_saved_models/model.pth")
    weights = torch.load(io.BytesIO(model["Body"].read()), weights_only=True)
    QNetwork([(5, 9), (9, 3)]).load_state_dict(weights)  # the model, as trained

    def document(name: str) -> dict[str, Any]:
        return json.loads(client.get_object(Bucket=bucket.name, Key=prefix + name)["Body"].read())

    identity = {"user_id": "u-1", "user": "Ada", "session_id": "fast_car",
                "pushed_at": "2025-01-02T03:04:05+00:00"}
    assert document("user.json") == identity
    assert document("summary.json") == pushed.summary == {
        **identity, "score": 120.0 / 4 + 10.0 / 2, "record": 120.0, "laps_completed": 2,
        "mean_progress": 80.0, "num_trials": 4, "model_configuration": "[[5, 9], [9, 3]]",
        # evaluated before lap times were recorded (the original's keys only): none
        "best_lap_time": None, "best_lap_ratio": None, "reference_lap_time": None, "car": None,
        "algorithm": None}


def test_an_upload_that_arrives_corrupted_is_sent_again(aws: Any, store: SessionStore, evaluated_session: Any,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    evaluated_session(store, "fast_car")
    bucket = open_bucket(Settings(s3_bucket=aws.new_bucket(), s3_endpoint_url=aws.url))
    corrupted: list[str] = []

    def corrupt(times: int) -> Any:
        def flip_a_byte(request: Any, **kwargs: Any) -> None:  # on the wire, after the checksum was computed
            if request.url.endswith("model.pth") and len(corrupted) < times:
                body = bytearray(request.body.read() if hasattr(request.body, "read") else request.body)
                body[len(body) // 2] ^= 0xFF
                request.body = bytes(body)
                corrupted.append(request.url)
        return flip_a_byte

    handler = corrupt(times=2)
    bucket.client.meta.events.register("before-send.s3.PutObject", handler)
    push_session(bucket, store, "fast_car", user_id="u-1", user="Ada")
    assert len(corrupted) == 2
    model_key = "Models/u-1/fast_car/session_saved_models/model.pth"
    model = aws.client().get_object(Bucket=bucket.name, Key=model_key)
    assert model["Body"].read() == store.paths("fast_car").model.read_bytes()
    assert "differs from what was sent (attempt 2 of 3)" in caplog.text

    bucket.client.meta.events.unregister("before-send.s3.PutObject", handler)
    corrupted.clear()
    bucket.client.meta.events.register("before-send.s3.PutObject", corrupt(times=99))
    with pytest.raises(CloudError) as refused:
        push_session(bucket, store, "fast_car", user_id="u-1", user="Ada")
    assert refused.value.status == 502 and len(corrupted) == 3
    assert "model.pth" in str(refused.value) and "checksums differ" in str(refused.value)


def test_only_trained_and_evaluated_sessions_are_pushed(aws: Any, store: SessionStore,
                                                       evaluated_session: Any) -> None:
    bucket = open_bucket(Settings(s3_bucket=aws.new_bucket(), s3_endpoint_url=aws.url))
    with pytest.raises(SessionNotFound):
        push_session(bucket, store, "nothing_here", user_id="u-1", user="Ada")
    store.create("untrained")
    with pytest.raises(CloudError) as untrained:
        push_session(bucket, store, "untrained", user_id="u-1", user="Ada")
    assert untrained.value.status == 409 and "train it" in str(untrained.value)
    evaluated_session(store, "unevaluated", record=None)
    with pytest.raises(CloudError) as unevaluated:
        push_session(bucket, store, "unevaluated", user_id="u-1", user="Ada")
    assert unevaluated.value.status == 409 and "evaluate it first" in str(unevaluated.value)
    for user_id, user, word in [("../x", "Ada", "user_id"), ("u-1", "", "user"), ("u-1", "a\nb", "user")]:
        with pytest.raises(ValueError, match=word):
            push_session(bucket, store, "unevaluated", user_id=user_id, user=user)
    assert "Contents" not in aws.client().list_objects_v2(Bucket=bucket.name)


def test_the_bucket_leaderboard_ranks_summaries_and_skips_what_is_not_one(aws: Any, store: SessionStore,
                                                                          evaluated_session: Any) -> None:
    bucket = open_bucket(Settings(s3_bucket=aws.new_bucket(), s3_endpoint_url=aws.url))
    assert bucket_leaderboard(bucket) == []
    # Ranked by laps, then best lap time, then progress: the highest score (300 / 5) laps least.
    pushes = [("slow", "u-1", 10.0, 3, 95.0), ("fast", "u-2", 300.0, 0, 90.0),
              ("middle", "u-1", 90.0, 1, 50.0), ("wide", "u-2", 5.0, 1, 70.0)]
    for session_id, user_id, record, laps, progress in pushes:
        evaluated_session(store, session_id, record=record, laps=laps, progress=progress, trials=5)
        push_session(bucket, store, session_id, user_id=user_id, user=f"user {user_id}")
    client = aws.client()
    client.put_object(Bucket=bucket.name, Key="Models/u-3/broken/summary.json", Body=b"{not json")
    client.put_object(Bucket=bucket.name, Key="Models/u-3/no_score/summary.json", Body=b'{"user": "x"}')
    client.put_object(Bucket=bucket.name, Key="Models/u-3/elsewhere.json", Body=b"{}")

    def summary(session_id: str, **figures: Any) -> None:
        body = {"user_id": "u-4", "user": "user u-4", "session_id": session_id, "score": 1.0, "record": 1.0,
                "num_trials": 5, "mean_progress": 100.0, "pushed_at": "2026-12-03T10:00:00+00:00", **figures}
        client.put_object(Bucket=bucket.name, Key=f"Models/u-4/{session_id}/summary.json",
                          Body=json.dumps(body).encode())

    summary("timed", laps_completed=3, best_lap_time=15.5, best_lap_ratio=1.21, reference_lap_time=12.8,
            car="discrete")
    summary("quicker", laps_completed=3, best_lap_time=14.0, best_lap_ratio=1.09, reference_lap_time=12.8,
            car="discrete")
    # Figures a push could not have made (anyone who can write to the bucket can write these) count as none.
    summary("tampered", laps_completed=9, mean_progress=10.0, best_lap_time=-1.0, best_lap_ratio=0.5,
            car="rocket")
    summary("unlapped", laps_completed=0, mean_progress=400.0, best_lap_time=1.0, reference_lap_time=12.8)

    standings = bucket_leaderboard(bucket)
    assert [(s.session_id, s.user, s.score) for s in standings] == [
        ("quicker", "user u-4", 1.0), ("timed", "user u-4", 1.0), ("slow", "user u-1", 2.0),
        ("wide", "user u-2", 1.0), ("middle", "user u-1", 18.0), ("fast", "user u-2", 60.0),
        ("tampered", "user u-4", 1.0), ("unlapped", "user u-4", 1.0)]
    assert all(s.source == "bucket" and s.pushed_at for s in standings)
    quicker, timed, slow = standings[:3]
    assert (quicker.best_lap_time, quicker.best_lap_ratio, quicker.reference_lap_time, quicker.car) == (
        14.0, 1.09, 12.8, "discrete")
    assert timed.best_lap == "15.5 s (1.21\N{MULTIPLICATION SIGN} reference)"
    assert (slow.laps_completed, slow.best_lap_time, slow.car) == (3, None, None)  # pushed before lap times
    tampered, unlapped = standings[-2:]
    assert (tampered.laps_completed, tampered.best_lap_time, tampered.best_lap_ratio, tampered.car) == (
        None, None, None, None)
    assert (unlapped.mean_progress, unlapped.best_lap_time, unlapped.reference_lap_time) == (None, None, 12.8)


def test_storage_problems_are_clear_errors(aws: Any, store: SessionStore, evaluated_session: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    evaluated_session(store, "fast_car")
    existing = aws.new_bucket()

    def push(**settings: Any) -> CloudError:
        with pytest.raises(CloudError) as failed:
            push_session(open_bucket(Settings(**settings)), store, "fast_car", user_id="u-1", user="Ada")
        return failed.value

    with pytest.raises(CloudError) as unset:
        open_bucket(Settings())
    assert unset.value.status == 400 and str(unset.value) == NO_BUCKET

    missing = push(s3_bucket="no-such-bucket", s3_endpoint_url=aws.url)
    assert missing.status == 502
    assert "bucket 'no-such-bucket' does not exist" in str(missing) and "--s3-bucket" in str(missing)

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    unreachable = push(s3_bucket=existing, s3_endpoint_url=nowhere)
    assert unreachable.status == 503
    assert "cannot be reached" in str(unreachable) and nowhere in str(unreachable)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    unknown_key = push(s3_bucket=existing, s3_endpoint_url=aws.url)
    assert unknown_key.status == 502 and "InvalidAccessKeyId" in str(unknown_key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    wrong_secret = push(s3_bucket=existing, s3_endpoint_url=aws.url)
    assert wrong_secret.status == 502 and "SignatureDoesNotMatch" in str(wrong_secret)
    for refused in (unknown_key, wrong_secret):
        assert "refused the server's AWS credentials" in str(refused) and "AWS_ACCESS_KEY_ID" in str(refused)
        assert "not-the-secret" not in str(refused)

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CloudError) as no_credentials:
        bucket_leaderboard(open_bucket(Settings(s3_bucket=existing, s3_endpoint_url=aws.url)))
    assert no_credentials.value.status == 502
    assert "no AWS credentials found" in str(no_credentials.value)
    assert "AWS_PROFILE" in str(no_credentials.value) and "AWS_ACCESS_KEY_ID" in str(no_credentials.value)


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("s3_bucket", "My_Models", "--s3-bucket NAME or REWARDS_S3_BUCKET"),
    ("s3_bucket", "10.0.0.1", "S3 bucket name"),
    ("s3_endpoint_url", "minio:9000", "--s3-endpoint-url URL or REWARDS_S3_ENDPOINT_URL"),
    ("s3_endpoint_url", "http://127.0.0.1:99999", "http://127.0.0.1:9000"),
    ("s3_region", "eu west", "--s3-region or REWARDS_S3_REGION"),
])
def test_storage_settings_are_checked(setting: str, value: str, words: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(**{setting: value})
    message = first_error_message(refused.value)
    assert message.startswith(f"{setting} = {value!r} is not valid") and words in message


def test_credentials_in_the_endpoint_url_are_refused_without_being_shown() -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(s3_endpoint_url="http://AKIAXYZ:topsecret@127.0.0.1:9000")
    message = first_error_message(refused.value)
    assert "topsecret" not in message and "AKIAXYZ" not in message
    assert "AWS_ACCESS_KEY_ID" in message and "http://***@127.0.0.1:9000" in message
    assert Settings(s3_bucket="", s3_endpoint_url="http://127.0.0.1:9000/").model_dump(
        include={"s3_bucket", "s3_endpoint_url"}) == {"s3_bucket": None, "s3_endpoint_url": "http://127.0.0.1:9000"}


def test_the_push_and_leaderboard_commands(s3_server: Any, store: SessionStore, evaluated_session: Any
                                           ) -> None:
    evaluated_session(store, "cli_car", record=50.0, trials=5)
    bucket = s3_server.new_bucket()

    def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([COMMAND, "--home", str(store.home), *args], capture_output=True, text=True,
                              timeout=120, env={**os.environ, **s3_server.env(), "COLUMNS": "200", **env})

    pushed = cli("push", "cli_car", "--user-id", "u-1", "--user", "Ada", "--s3-bucket", bucket,
                 "--s3-endpoint-url", s3_server.url)
    assert pushed.returncode == 0, pushed.stderr
    assert f"Pushed session cli_car to s3://{bucket}/Models/u-1/cli_car/: 7 files" in pushed.stdout
    unset = cli("push", "cli_car", "--user-id", "u-1", "--user", "Ada")
    assert unset.returncode == 2 and "no S3 bucket configured: give --s3-bucket NAME" in unset.stderr

    board = cli("leaderboard", "--json", REWARDS_S3_BUCKET=bucket, REWARDS_S3_ENDPOINT_URL=s3_server.url)
    assert board.returncode == 0, board.stderr
    assert [(row["rank"], row["user"], row["session_id"], row["source"], row["score"])
            for row in json.loads(board.stdout)] == [(1, "Ada", "cli_car", "bucket", 10.0),
                                                     (2, None, "cli_car", "local", 10.0)]


SIGNED_IN = {"id": "8d0f9c4e-1b2a-4c3d-9e8f-0a1b2c3d4e5f", "email": "ada@example.org", "phone": "",
             "user_metadata": {"full_name": "Ada Lovelace", "avatar_url": "https://example.org/ada.png"},
             "identities": [{"provider": "github", "identity_data": {"full_name": "Ada Lovelace",
                                                                    "email": "ada@example.org"}}]}


def test_a_push_with_the_users_object_keeps_it_and_shows_the_name_derived_from_it(
        aws: Any, store: SessionStore, evaluated_session: Any) -> None:
    evaluated_session(store, "fast_car", record=100.0, trials=5)
    bucket = open_bucket(Settings(s3_bucket=aws.new_bucket(), s3_endpoint_url=aws.url))
    pushed = push_session(bucket, store, "fast_car", user_id=SIGNED_IN["id"], user=SIGNED_IN)
    assert pushed.summary["user"] == "Ada Lovelace" and pushed.summary["user_profile"] == SIGNED_IN
    stored = aws.client().get_object(Bucket=bucket.name, Key=f"{pushed.prefix}user.json")["Body"].read()
    assert json.loads(stored) == SIGNED_IN
    [standing] = bucket_leaderboard(bucket)
    assert standing.user == "Ada Lovelace" and standing.profile == SIGNED_IN
    assert "profile" not in standing.entry()  # the /leaderboard entry stays as it was
    row = leaderboard_user(standing)
    assert row["identities"][0]["identity_data"] == {"full_name": "Ada Lovelace", "email": "ada@example.org",
                                                     "avatar_url": "https://example.org/ada.png"}
    assert {key: value for key, value in row.items() if key != "identities"} == {
        key: value for key, value in SIGNED_IN.items() if key != "identities"}

    # Someone with write access to the bucket changed the object: the row shows the name only.
    summary_key = f"{pushed.prefix}summary.json"
    tampered = {**pushed.summary, "user_profile": {"id": 5}}
    aws.client().put_object(Bucket=bucket.name, Key=summary_key, Body=json.dumps(tampered).encode())
    [standing] = bucket_leaderboard(bucket)
    assert standing.profile is None and leaderboard_user(standing)["identities"][0]["identity_data"][
        "full_name"] == "Ada Lovelace"


@pytest.mark.parametrize(("profile", "name"), [
    (SIGNED_IN, "Ada Lovelace"),
    ({"user_metadata": {"name": "ada_l"}, "identities": [{"identity_data": {"full_name": "Ada L."}}]},
     "Ada L."),
    ({"user_metadata": {"full_name": "  \u200b\x07 "}, "email": "ada@example.org"}, "ada@example.org"),
    ({"user_metadata": {"full_name": "A" * 100}}, "A" * 64),
    ({"id": "x"}, "u-1"),
])
def test_the_display_name_of_a_users_object(profile: dict[str, Any], name: str) -> None:
    assert display_name(check_user_profile(profile), "u-1") == name


def test_a_push_with_a_name_or_no_identities_gives_the_original_leaderboards_shape() -> None:
    by_name = Standing(session_id="s", user="Bob", score=1.0, record=None, laps_completed=None,
                       mean_progress=None, num_trials=None, source="bucket")
    assert leaderboard_user(by_name) == {
        "email": "", "user_metadata": {"full_name": "Bob", "avatar_url": ""},
        "identities": [{"identity_data": {"full_name": "Bob", "email": "", "avatar_url": ""}}]}
    owners = Standing(session_id="s", user=None, score=1.0, record=None, laps_completed=None,
                      mean_progress=None, num_trials=None, source="local")
    assert leaderboard_user(owners)["identities"][0]["identity_data"]["full_name"] == "owner"
    bare = {"id": "u", "email": "eve@example.org", "identities": [], "user_metadata": {}}
    row = leaderboard_user(Standing(**{**vars(by_name), "user": "eve@example.org", "profile": bare}))
    eve = "eve@example.org"
    assert row["identities"] == [{"identity_data": {"full_name": eve, "email": eve, "avatar_url": ""}}]
    assert bare["identities"] == []  # the standing's object is not changed
