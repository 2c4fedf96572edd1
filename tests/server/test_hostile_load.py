"""One user's load and data against a real server (issue 14): evaluations and reward checks are bounded
and never hold the threads other requests need; a session's bad data breaks only its own card in the lab;
big networks are refused and a finished job's weights are let go; random tracks are not built on the event
loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import COMMAND, TOKEN, Server, forked_children, free_port, niceness
from selenium import webdriver
from test_web_lab import by_id, headless_chromium, wait

from rewards_api.store import SessionStore, user_home
from rewards_api.users import UserRegistry

V1 = "/api/v1"


class HealthWatch:
    """``GET /health`` every 0.1 s in a thread while the block runs: the slowest answer it saw."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.slowest = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=60) as client:
            while not self._done.is_set():
                began = time.monotonic()
                assert client.get("/health").status_code == 200
                self.slowest = max(self.slowest, time.monotonic() - began)
                time.sleep(0.1)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join(60)


@pytest.fixture
def classroom(tmp_path: Path, launch) -> tuple[Server, dict[str, str]]:
    """A server with two users: mallory (the attacker) and alice; their tokens by name."""
    home = tmp_path / "home"
    registry = UserRegistry(home)
    tokens = {name: registry.add(name) for name in ("mallory", "alice")}
    return launch(home, "--token", TOKEN), tokens


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    driver = headless_chromium("--window-size=1366,900")
    yield driver
    driver.quit()


def create(client: httpx.Client, session: str, layers: str = "[[5,9],[9,3]]", episodes: int = 100) -> None:
    assert client.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    written = client.post(f"{V1}/write_agent_params", json={
        "session_id": session, "model_configuration": layers, "num_episodes": episodes})
    assert written.status_code == 200, written.text


# ----- finding 8: one session's data breaks its own card, never the page nor the server ------------------
def write_json(path: Path, document: object) -> None:
    path.write_text(json.dumps(document))  # json.dumps writes Infinity and NaN, and \ud800 escapes


def test_a_card_whose_data_cannot_be_drawn_shows_an_error_and_nothing_else_breaks(
        classroom: tuple[Server, dict[str, str]], chromium: webdriver.Chrome) -> None:
    server, tokens = classroom
    with server.client(tokens["mallory"]) as mallory:
        for session in ("good_car", "inf_car", "nan_car", "surrogate_car", "raising_car"):
            create(mallory, session)
    folder = user_home(server.home, "mallory")
    inf = float("inf")
    write_json(folder / "inf_car" / "training_metrics.json", {"plot_scores": [1.0, inf],
                                                              "plot_mean_scores": [1.0, inf]})
    history = json.loads((folder / "inf_car/session_saved_models/model_history.json").read_text())
    write_json(folder / "inf_car/session_saved_models/model_history.json",
               {**history, "last_trained": {"date": "2026-12-01", "time": "10:00:00", "record": inf}})
    write_json(folder / "nan_car" / "evaluation_metrics.json",
               {"training": {"1": {"record": float("nan"), "num_trials": 1, "laps_completed": 0,
                                   "mean_progress": float("nan")}}, "evaluation": {"1": {}}})
    write_json(folder / "surrogate_car" / "training_params.json",
               {"learning_algorithm": "dqn", "enable_wandb": 0,
                "reward_function": "def reward_function(params):\n    return 1  # \ud800\n"})
    # Numbers where the lab expects them, but not the fields it draws: its render raises (KeyError).
    write_json(folder / "raising_car" / "evaluation_metrics.json",
               {"training": {"1": {"record": 5.0, "num_trials": 2}}, "evaluation": {"1": {}}})

    with HealthWatch(server) as health:
        chromium.delete_all_cookies()
        chromium.get(f"{server.url}/?token={tokens['mallory']}")
        wait(chromium, lambda d: d.title.startswith("Your models"), what="the models page")
        assert by_id(chromium, "state-good_car").text == "idle"  # the good card is drawn in full
        for session in ("inf_car", "nan_car", "surrogate_car", "raising_car"):
            by_id(chromium, f"card-{session}")  # each bad one has its card: drawn, or saying why not
        assert "could not be shown" in by_id(chromium, "card-error-raising_car").text
        time.sleep(4.5)  # the page follows the jobs every 2 s: it keeps running
        by_id(chromium, "state-good_car")
        with server.client(tokens["alice"]) as alice:
            began = time.monotonic()
            assert alice.get(f"{V1}/get_all_sessions").status_code == 200
            assert time.monotonic() - began < 2
    assert health.slowest < 2, f"/health took {health.slowest:.1f} s while the page was open"


def test_a_log_stream_nobody_reads_never_stops_the_server(tmp_path: Path) -> None:
    """Every request writes an access line: once a pipe nobody drains is full (64 KB), a handler writing
    on the event loop would block it, and the whole server with it."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}
    process = subprocess.Popen([COMMAND, "--home", str(tmp_path / "home"), "serve", "--port", str(port),
                                "--token", TOKEN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=environment)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            for _ in range(2500):  # ~180 KB of access lines
                assert client.get("/health").status_code == 200
            assert client.get(f"{V1}/get_all_sessions", headers={"Authorization": f"Bearer {TOKEN}"}
                              ).status_code == 200
    finally:
        process.kill()
        process.wait()


# ----- finding 9: networks are bounded, and a finished job lets its weights go ----------------------------
def test_a_network_too_big_for_the_server_is_refused_naming_the_limit(api: httpx.Client) -> None:
    api.post(f"{V1}/create_session", params={"session_id": "huge_net"})
    layers = [[5, 1024]] + [[1024, 1024]] * 14 + [[1024, 3]]
    refused = api.post(f"{V1}/write_agent_params", json={"session_id": "huge_net",
                                                          "model_configuration": json.dumps(layers)})
    assert refused.status_code == 422
    assert "the limit is 2,000,000 (MAX_PARAMETERS)" in refused.text
    fits = [[5, 1024], [1024, 1024], [1024, 3]]
    written = api.post(f"{V1}/write_agent_params", json={"session_id": "huge_net",
                                                          "model_configuration": json.dumps(fits)})
    assert written.status_code == 200


# ----- finding 4: evaluations and checks are bounded, niced, and never hold the threads others need -------
SLOW_REWARD = ("def reward_function(params):\n    total = 0\n    for step in range(200000):\n"
               "        total += step\n    return 1\n")


def test_a_flood_of_reward_checks_is_refused_beyond_the_bound_and_others_are_answered_at_once(
        classroom: tuple[Server, dict[str, str]]) -> None:
    server, tokens = classroom
    with server.client(tokens["alice"]) as alice:
        create(alice, "alice_car")

    def check(_: int) -> httpx.Response:
        with server.client(tokens["mallory"]) as mallory:
            return mallory.post(f"{V1}/check_reward_fn", json={"reward_function": SLOW_REWARD}, timeout=120)

    with ThreadPoolExecutor(45) as pool:
        pending = [pool.submit(check, number) for number in range(45)]
        time.sleep(1.0)  # the checks have arrived: with every pool thread waiting, alice's request would too
        with server.client(tokens["alice"]) as alice:
            began = time.monotonic()
            assert alice.get(f"{V1}/get_all_sessions").status_code == 200
            waited = time.monotonic() - began
        answers = [future.result() for future in pending]
        statuses = [answer.status_code for answer in answers]
    assert waited < 1.0, f"get_all_sessions waited {waited:.1f} s behind another user's checks"
    assert statuses.count(200) >= 2 and statuses.count(429) >= 40, statuses
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert "the limit is 2 at once per user" in refused.json()["message"]


SLOW = ("def reward_function(params):\n    total = 0\n    for i in range(40000):\n        total += i\n"
        "    return 1\n")
"""A reward function of ~10 ms a call: an evaluation of 20 trials lasts a second or so."""


def test_evaluations_are_bounded_per_user_and_run_niced(
        classroom: tuple[Server, dict[str, str]], evaluated_session: Any) -> None:
    server, tokens = classroom
    with server.client(tokens["mallory"]) as mallory:
        create(mallory, "eval_car")
        slow = mallory.post(f"{V1}/write_training_params",
                            json={"session_id": "eval_car", "reward_function": SLOW})
        assert slow.status_code == 200, slow.text
    evaluated_session(SessionStore(user_home(server.home, "mallory")), "eval_car", record=None)  # a model
    before = forked_children(server.process.pid)

    def evaluate(_: int) -> int:
        query = {"session_id": "eval_car", "num_trials": 20}
        with server.client(tokens["mallory"]) as mallory, mallory.stream(
                "GET", f"{V1}/evaluate", params=query, timeout=120) as answer:
            return answer.status_code  # the results are in once the replay starts: it is not watched

    with ThreadPoolExecutor(3) as pool:
        answers = pool.map(evaluate, range(3))
        seen: dict[int, int | None] = {}  # the last reading of each evaluation child (one lasts ~1 s)
        deadline = time.monotonic() + 20
        while (not seen or forked_children(server.process.pid) - before) and time.monotonic() < deadline:
            for pid in forked_children(server.process.pid) - before:
                if (nice := niceness(pid)) is not None:
                    seen[pid] = nice
            time.sleep(0.05)
        statuses = sorted(answers)
    assert seen and all(nice is not None and nice >= 10 for nice in seen.values()), seen
    assert statuses == [200, 200, 429], statuses  # two at a time per user: the third is refused

def test_an_evaluation_looks_the_session_up_before_building_its_track(api: httpx.Client) -> None:
    answer = api.get(f"{V1}/evaluate", params={"session_id": "no_such_session", "mode": "training",
                                               "track_num": "random:not-a-seed"})
    assert answer.status_code == 404  # looked up first; the track is then built off the event loop
