"""The issue's case through a real server (no bucket): two sessions evaluated over HTTP, whose reward
functions are 1,000,000 a step (its car crashes) and 1 a step (its car laps), and an evaluation made before
lap times were recorded. ``/leaderboard`` and ``/get_user_list`` rank by laps, best lap time and progress;
``score`` keeps its original meaning."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from conftest import TOKEN

from rewards_api.agents.dqn import QNetwork
from rewards_api.store import SessionStore, atomic_write_bytes
from rewards_api.users import UserRegistry

V1 = "/api/v1"
TIMES = "\N{MULTIPLICATION SIGN}"  # of "1.18x reference"


def driver_weights(steers_away_from_walls: bool) -> bytes:
    """A classic car's ``[[5, 3]]`` Q-network that needs no training: it turns towards the side with more
    room (it laps the evaluation track), or, reversed, towards the nearer wall (it crashes at once)."""
    network = QNetwork([(5, 3)])
    sign = 1.0 if steers_away_from_walls else -1.0
    with torch.no_grad():
        network.layers[0].bias.zero_()
        network.layers[0].weight.copy_(torch.tensor([[-sign, -sign, 0.0, sign, sign],
                                                     [sign, sign, 0.0, -sign, -sign],
                                                     [0.0, 0.0, 0.3, 0.0, 0.0]]))
    weights = io.BytesIO()
    torch.save(network.state_dict(), weights)
    return weights.getvalue()


def test_a_million_a_step_that_never_laps_ranks_below_a_car_that_laps(launch: Any, tmp_path: Path,
                                                                      evaluated_session: Any) -> None:
    home = tmp_path / "home"
    UserRegistry(home).add("alice")
    server = launch(home, "--token", TOKEN)
    with server.client() as api:
        for session_id, reward, laps in (("millions", "1000000.0", False), ("lapper", "1.0", True)):
            assert api.post(f"{V1}/create_session", params={"session_id": session_id}).status_code == 200
            written = api.post(f"{V1}/write_agent_params", json={"session_id": session_id,
                                                                 "model_configuration": "[[5, 3]]"})
            assert written.status_code == 200, written.text
            reward_source = f"def reward_function(params):\n    return {reward}\n"
            written = api.post(f"{V1}/write_reward_fn", json={"session_id": session_id,
                                                              "reward_function": reward_source})
            assert written.status_code == 200, written.text
            atomic_write_bytes(SessionStore(home).paths(session_id).model, driver_weights(laps))
            with api.stream("GET", f"{V1}/evaluate", params={"session_id": session_id, "mode": "evaluation",
                                                             "track_num": 1, "num_trials": 5}) as evaluation:
                assert evaluation.status_code == 200  # recorded before the first frame is sent
        alice = SessionStore(home / ".users" / "alice")
        evaluated_session(alice, "before_lap_times", record=3.0, laps=1, progress=60.0)  # the original's keys

        metrics = {session_id: api.get(f"{V1}/get_all_params", params={"session_id": session_id}).json()[
            "evaluation_metrics"]["evaluation"]["1"] for session_id in ("millions", "lapper")}
        scores = {session_id: api.get(f"{V1}/final_eval_score", params={"session_id": session_id}).json()[
            "score"] for session_id in ("millions", "lapper")}
        board = api.get(f"{V1}/leaderboard").json()
        users = api.get(f"{V1}/get_user_list").json()
        card = api.get(f"{V1}/model_info", params={"session_id": "lapper"}).json()

    crashed, lapped = metrics["millions"], metrics["lapper"]
    assert crashed["laps_completed"] == 0 and crashed["off_track_count"] == 5 and crashed["record"] > 1e6
    assert lapped["laps_completed"] == 5 and lapped["best_lap_time"] > 0 and lapped["best_lap_ratio"] > 0
    assert scores["millions"] > 1000 * scores["lapper"]  # what the original ranked by

    assert [(row["rank"], row["session_id"], row["user"]) for row in board["leaderboard"]] == [
        (1, "lapper", None), (2, "before_lap_times", "alice"), (3, "millions", None)]
    first, second, third = board["leaderboard"]
    assert first == {"rank": 1, "user": None, "session_id": "lapper", "score": scores["lapper"],
                     "record": lapped["record"], "laps_completed": 5, "mean_progress": 100.0, "num_trials": 5,
                     "source": "local", "pushed_at": None, "best_lap_time": lapped["best_lap_time"],
                     "best_lap_ratio": lapped["best_lap_ratio"],
                     "reference_lap_time": lapped["reference_lap_time"], "car": "classic", "algorithm": "dqn"}
    assert second["best_lap_time"] is None and second["car"] is None and second["laps_completed"] == 1
    assert third["score"] == scores["millions"] and third["best_lap_time"] is None

    assert [(row["session_id"], row["name"], row["score"]) for row in users["leaderboard_data"]] == [
        ("lapper", "owner", scores["lapper"]), ("before_lap_times", "alice", 3.0 / 5),
        ("millions", "owner", scores["millions"])]

    assert card["evaluation"]["evaluation"]["1"] == lapped
    laps = card["lap_times"]["evaluation"]["1"]
    assert laps["best_lap_time"] == lapped["best_lap_time"] and laps["best_lap"].endswith(
        f"s ({lapped['best_lap_ratio']:.2f}{TIMES} reference)")
    assert card["lap_times"]["training"]["1"] is None
