"""What the web lab needs from the server, over real HTTP: signing in at ``/``, ``whoami``, checking a reward
function without saving it, watching without starting, and the starter examples."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from conftest import TOKEN, start_server, stop_server
from test_training import new_session, wait_for

from rewards_api.envs.reward import EXAMPLE_REWARDS, PARAM_DESCRIPTIONS, PARAM_KEYS
from rewards_api.ui.signin import _safe_next
from rewards_api.users import UserRegistry

V1 = "/api/v1"


def test_the_start_up_url_signs_the_browser_in_with_a_cookie(server) -> None:
    with httpx.Client(base_url=server.url) as browser:
        unsigned = browser.get("/")
        assert unsigned.status_code == 303 and unsigned.headers["location"] == "/signin?next=%2F"
        refused = browser.get("/", params={"token": "wrong-token-0123456789"})
        assert refused.status_code == 303 and "error=1" in refused.headers["location"]
        assert "rewards_token" not in browser.cookies
        signed = browser.get("/", params={"token": TOKEN})
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        page = browser.get("/")
        assert page.status_code == 200 and "<title>Your models · rewards</title>" in page.text
        assert TOKEN not in page.text  # the models page needs no token in its HTML until it shows media
        assert browser.get("/signin").status_code == 200


def test_unsafe_places_to_return_to_are_replaced_by_home() -> None:
    assert _safe_next("/models/x/train") == "/models/x/train"
    for target in ("//evil.example/", "https://evil.example/", "", None, "javascript:alert(1)"):
        assert _safe_next(target) == "/"


def test_whoami_names_the_tokens_user(server, tmp_path: Path, launch) -> None:
    with server.client() as owner:
        assert owner.get(f"{V1}/whoami").json() == {"status": 200, "user": None, "owner": True}
    assert httpx.get(f"{server.url}{V1}/whoami").status_code == 401
    home = tmp_path / "home"
    alice = UserRegistry(home).add("alice")
    running = launch(home, "--token", TOKEN)
    with running.client(alice) as client:
        assert client.get(f"{V1}/whoami").json() == {"status": 200, "user": "alice", "owner": False}


def test_a_reward_function_is_checked_without_being_saved(api: httpx.Client) -> None:
    before = api.get(f"{V1}/get_all_sessions").json()
    wrong = "def reward_function(params):\n    speed = params['speed']\n    return params['radar'][2]\n"
    refused = api.post(f"{V1}/check_reward_fn", json={"reward_function": wrong})
    assert refused.status_code == 422
    problem = refused.json()["errors"][0]
    assert problem["parameter"] == "reward_function" and problem["line"] == 3
    assert "did you mean 'radars'" in problem["message"]
    broken = "def reward_function(params):\n  return (\n"
    syntax = api.post(f"{V1}/check_reward_fn", json={"reward_function": broken})
    assert syntax.status_code == 422 and syntax.json()["errors"][0]["line"] in (2, 3)
    missing = api.post(f"{V1}/check_reward_fn", json={})
    assert missing.status_code == 422 and "reward_function" in missing.json()["message"]
    assert api.get(f"{V1}/get_all_sessions").json() == before


def test_every_starter_example_passes_the_servers_check(api: httpx.Client) -> None:
    assert set(EXAMPLE_REWARDS) >= {"Stay alive", "Keep to the centre", "Go fast on straights"}
    for title, source in EXAMPLE_REWARDS.items():
        answer = api.post(f"{V1}/check_reward_fn", json={"reward_function": source})
        assert answer.status_code == 200, (title, answer.text)


def test_the_params_reference_covers_every_key() -> None:
    assert list(PARAM_DESCRIPTIONS) == list(PARAM_KEYS)
    assert all(text.strip() for text in PARAM_DESCRIPTIONS.values())


def test_watching_without_starting(api: httpx.Client) -> None:
    session = new_session(api, episodes=100000)
    idle = api.get(f"{V1}/stream", params={"session_id": session, "start": "false"})
    assert idle.status_code == 409 and "not training" in idle.json()["message"]
    assert api.get(f"{V1}/jobs/{session}").status_code == 404  # nothing was started
    assert api.get(f"{V1}/stream", params={"session_id": "no_such", "start": "false"}).status_code == 404
    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    try:
        with api.stream("GET", f"{V1}/stream", params={"session_id": session, "start": "false"}) as watching:
            assert watching.status_code == 200
            assert watching.headers["content-type"].startswith("multipart/x-mixed-replace")
            first = next(watching.iter_bytes())
            assert b"Content-Type: image/jpeg" in first
    finally:
        api.get(f"{V1}/stop", params={"session_id": session})
    wait_for(api, session, ("stopped", "finished"))
    time.sleep(0.2)
    again = api.get(f"{V1}/stream", params={"session_id": session, "start": "false"})
    assert again.status_code == 409
    assert api.get(f"{V1}/jobs/{session}").json()["state"] in ("stopped", "finished")


def test_the_api_alone_without_the_web_lab(tmp_path: Path) -> None:
    running = start_server(tmp_path / "home", "--token", TOKEN, env={"REWARDS_WEB_UI": "false"})
    try:
        assert httpx.get(f"{running.url}/").status_code == 404
        with running.client() as client:
            assert client.get(f"{V1}/whoami").status_code == 200
    finally:
        stop_server(running)
