"""Users on one server: each touches only their own sessions; another's is a 404 like a missing one."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from conftest import TOKEN

from rewards_api.users import UserRegistry

FAST = {"model_configuration": "[[5, 3]]", "learning_rate": 0.01, "loss_fn": "mse", "optimizer": "adam",
        "gamma": 0.9, "epsilon": 20, "num_episodes": 100000}
REWARD = "def reward_function(params):\n    return 1\n"


@pytest.fixture
def classroom(tmp_path: Path, launch):
    home = tmp_path / "home"
    registry = UserRegistry(home)
    tokens = {"alice": registry.add("alice"), "bob": registry.add("bob")}
    server = launch(home, "--token", TOKEN, "--max-jobs", "1")
    clients = {name: server.client(token) for name, token in tokens.items()}
    clients["owner"] = server.client()
    yield server, clients, registry
    for client in clients.values():
        for job in client.get("/api/v1/jobs").json().get("jobs", []):
            client.get("/api/v1/stop", params={"session_id": job["session_id"]})
        client.close()


def create(client: httpx.Client, session_id: str) -> None:
    assert client.post("/api/v1/create_session", params={"session_id": session_id}).status_code == 200
    body = {"session_id": session_id, **FAST}
    assert client.post("/api/v1/write_agent_params", json=body).status_code == 200


def without_id(response: httpx.Response, session_id: str) -> tuple[int, str]:
    return response.status_code, response.json()["message"].replace(repr(session_id), "<id>")


def test_each_user_sees_only_their_sessions_and_ids_do_not_collide(classroom) -> None:
    server, clients, _ = classroom
    create(clients["owner"], "shared")
    create(clients["alice"], "shared")
    create(clients["alice"], "mine")
    listing = {name: sorted(client.get("/api/v1/get_all_sessions").json())
               for name, client in clients.items()}
    assert listing == {"owner": ["shared"], "alice": ["mine", "shared"], "bob": []}
    # The owner's sessions keep the seed's layout at the root; the others' live under .users/<name>/.
    assert (server.home / "shared" / "agent_params.json").exists()
    assert (server.home / ".users" / "alice" / "mine" / "agent_params.json").exists()
    assert not (server.home / "mine").exists()
    # Writing one user's "shared" leaves the other's alone.
    changed = {"session_id": "shared", "environment_world": 3, "car_speed": 30}
    assert clients["alice"].post("/api/v1/write_env_params", json=changed).status_code == 200
    owner = clients["owner"].get("/api/v1/get_all_params", params={"session_id": "shared"}).json()
    assert owner["env_params"].get("environment_world") != 3


REQUESTS = [
    ("GET", "/api/v1/get_all_params", {"params": {"session_id": "{id}"}}),
    ("GET", "/api/v1/final_eval_score", {"params": {"session_id": "{id}"}}),
    ("POST", "/api/v1/write_env_params", {"json": {"session_id": "{id}", "environment_world": 2}}),
    ("POST", "/api/v1/write_agent_params", {"json": {"session_id": "{id}", **FAST}}),
    ("POST", "/api/v1/write_reward_fn", {"json": {"session_id": "{id}", "reward_function": REWARD}}),
    ("POST", "/api/v1/delete_session", {"params": {"session_id": "{id}"}}),
    ("POST", "/api/v1/train", {"params": {"session_id": "{id}"}}),
    ("GET", "/api/v1/stop", {"params": {"session_id": "{id}"}}),
    ("GET", "/api/v1/stream", {"params": {"session_id": "{id}"}}),
    ("GET", "/api/v1/metrics/stream", {"params": {"session_id": "{id}"}}),
    ("GET", "/api/v1/evaluate", {"params": {"session_id": "{id}", "mode": "training", "track_num": "1"}}),
    ("GET", "/api/v1/jobs/{id}", {}),
]


def _fill(value: object, session_id: str) -> object:
    if isinstance(value, str):
        return value.replace("{id}", session_id)
    if isinstance(value, dict):
        return {key: _fill(item, session_id) for key, item in value.items()}
    return value


def test_another_users_session_is_a_404_that_reveals_nothing(classroom) -> None:
    _, clients, _ = classroom
    create(clients["alice"], "secret")
    clients["alice"].post("/api/v1/train", params={"session_id": "secret"})
    bob = clients["bob"]
    for method, path, kwargs in REQUESTS:
        theirs = bob.request(method, _fill(path, "secret"), **_fill(kwargs, "secret"))
        nobodys = bob.request(method, _fill(path, "nobody"), **_fill(kwargs, "nobody"))
        assert theirs.status_code == 404, (path, theirs.text)
        assert without_id(theirs, "secret") == without_id(nobodys, "nobody"), path
    assert bob.get("/api/v1/jobs").json()["jobs"] == []
    # Alice's session is untouched and still trains; the owner (an admin) sees the job and whose it is.
    assert clients["alice"].get("/api/v1/get_all_params", params={"session_id": "secret"}).status_code == 200
    jobs = clients["owner"].get("/api/v1/jobs").json()["jobs"]
    assert [(job["user"], job["session_id"]) for job in jobs] == [("alice", "secret")]
    assert clients["alice"].get("/api/v1/jobs/secret").json()["user"] == "alice"


def test_a_user_may_train_two_sessions_at_once_not_more(classroom) -> None:
    _, clients, _ = classroom
    alice = clients["alice"]
    for session_id in ("a1", "a2", "a3"):
        create(alice, session_id)
    assert alice.post("/api/v1/train", params={"session_id": "a1"}).status_code == 200
    assert alice.post("/api/v1/train", params={"session_id": "a2"}).status_code == 200
    refused = alice.post("/api/v1/train", params={"session_id": "a3"})
    assert refused.status_code == 429
    assert "a1" in refused.json()["message"] and "stop one first" in refused.json()["message"]
    # Asking again for a running one is not a new training.
    assert alice.post("/api/v1/train", params={"session_id": "a1"}).status_code == 200


def test_a_removed_users_token_stops_working_at_once(classroom) -> None:
    _, clients, registry = classroom
    assert clients["bob"].get("/api/v1/get_all_sessions").status_code == 200
    registry.remove("bob")
    deadline = time.monotonic() + 5
    while clients["bob"].get("/api/v1/get_all_sessions").status_code != 401:
        assert time.monotonic() < deadline, "the removed token still works"
        time.sleep(0.05)
    assert clients["alice"].get("/api/v1/get_all_sessions").status_code == 200


ODD_IDS = ["../alice", "..", ".users", "%2e%2e", "a/b", "x" * 65, "é", "a\x00b", " ", "alice/../../etc"]


def test_odd_session_ids_are_refused_before_any_path_is_built(classroom) -> None:
    server, clients, _ = classroom
    before = sorted(path.relative_to(server.home) for path in server.home.rglob("*"))
    for session_id in ODD_IDS:
        for name in ("alice", "owner"):
            response = clients[name].post("/api/v1/create_session", params={"session_id": session_id})
            assert response.status_code == 422, (session_id, response.text)
            assert response.json()["errors"][0]["parameter"] == "session_id"
            read = clients[name].get("/api/v1/get_all_params", params={"session_id": session_id})
            assert read.status_code == 422, session_id
    after = sorted(path.relative_to(server.home) for path in server.home.rglob("*"))
    assert after == before


def test_tokens_in_urls_never_reach_the_log(classroom) -> None:
    server, _, registry = classroom
    token = registry.add("carol")
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/api/v1/get_all_sessions", params={"token": token}).status_code == 200
        assert anonymous.get("/api/v1/get_all_sessions", params={"token": TOKEN, "x": "1"}).status_code == 200
    log = wait_for_log(server, "token=***")
    assert token not in log
    assert log.count(TOKEN) == 1  # only in the start-up banner, printed to the owner's terminal


def wait_for_log(server, text: str) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 5
    while text not in (log := server.output.read_text()):
        assert time.monotonic() < deadline, f"{text!r} not in the server's log:\n{log}"
        time.sleep(0.05)
    return log
