"""Measuring what the reward function does not decide, and ranking by it: lap time accounting from trial
results, real evaluations that record it, the standings the leaderboards read, and their order (laps, then
best lap time, then progress; never a reward function's units)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from rewards_api.agents.dqn import QNetwork
from rewards_api.cli import app
from rewards_api.cli import console as cli_console
from rewards_api.cloud import Standing, local_leaderboard, rank
from rewards_api.envs.physics import ACTION_SPACES, DEFAULT_ACTIONS, STEP_SECONDS
from rewards_api.envs.racing import car_spec
from rewards_api.envs.reference import reference_lap_time
from rewards_api.envs.tracks import get_track
from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.runs.evaluate import TrialResult, evaluate, lap_metrics
from rewards_api.scores import CARS, evaluation_summary, final_eval_score, lap_text, track_figures
from rewards_api.store import SessionStore, atomic_write_bytes

ORIGINAL_KEYS = {"num_trials", "record", "mean_score", "laps_completed", "mean_progress",
                 "total_elapsed_time", "evaluated_at"}
LAP_KEYS = {"completion_percent", "best_lap_time", "mean_lap_time", "off_track_count", "reference_lap_time",
            "best_lap_ratio", "car", "algorithm"}
MILLIONS = "def reward_function(params):\n    return 1000000.0\n"
ALIVE = "def reward_function(params):\n    return 1.0\n"
TIMES = "\N{MULTIPLICATION SIGN}"  # of "1.18x reference"


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


def driver(steers_away_from_walls: bool) -> QNetwork:
    """A classic car's Q-network that needs no training: it turns towards the side whose radars see more
    room (it laps the evaluation track from every start), or, reversed, towards the nearer wall (it leaves
    the track within a few metres)."""
    network = QNetwork([(5, 3)])
    sign = 1.0 if steers_away_from_walls else -1.0
    with torch.no_grad():
        weight, bias = network.layers[0].weight, network.layers[0].bias
        weight.zero_()
        bias.zero_()
        weight[0] = torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]) * sign  # 0: left
        weight[1] = -weight[0]  # 1: right
        weight[2] = torch.tensor([0.0, 0.0, 0.3, 0.0, 0.0])  # 2: straight on
    return network


def driven_session(store: SessionStore, session_id: str, reward: str, laps: bool) -> None:
    """A session with a reward function and a model that laps (``laps``) or crashes, ready to evaluate."""
    store.create(session_id)
    store.write_env_params(session_id, EnvParams(environment_world=1))
    store.write_agent_params(session_id, AgentParams(model_configuration="[[5, 3]]"))
    store.write_training_params(session_id, TrainingParams(reward_function=reward))
    weights = io.BytesIO()
    torch.save(driver(laps).state_dict(), weights)
    atomic_write_bytes(store.paths(session_id).model, weights.getvalue())


def racing_session(store: SessionStore, session_id: str, reward: str, speed: float) -> None:
    """A ``discrete`` car's session whose ``[[6, 15]]`` network needs no training: it drives the default
    actions of one speed only (m/s), steering full left or right towards the side with more room. At 1.5 m/s
    it laps the evaluation track; at 2.5 m/s its tyres cannot hold the bends and it runs off."""
    store.create(session_id)
    store.write_env_params(session_id, EnvParams(environment_world=1, action_space="discrete"),
                           model_configuration="[[6, 15]]")
    store.write_training_params(session_id, TrainingParams(reward_function=reward))
    network = QNetwork([(6, 15)], car_spec("discrete").observation_space().high.tolist())
    with torch.no_grad():
        weight, bias = network.layers[0].weight, network.layers[0].bias
        weight.zero_()
        bias.fill_(-100.0)  # the other speeds: never chosen
        for index, action in enumerate(DEFAULT_ACTIONS):
            if action.speed == speed:
                bias[index] = 0.0
                weight[index, :5] = torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0]) * action.steering_angle / 3
    weights = io.BytesIO()
    torch.save(network.state_dict(), weights)
    atomic_write_bytes(store.paths(session_id).model, weights.getvalue())
    car = EnvParams(action_space="discrete").car()  # as a training records the car its model drives
    store.update(session_id, "model_history", lambda history: history.update(last_trained={"car": car}))


def metrics(trials: int = 5, laps: int = 5, progress: float = 100.0, best: float | None = 20.0,
            record: float = 500.0, **more: Any) -> dict[str, Any]:
    """An evaluation track's metrics object as evaluate() writes it."""
    return {"num_trials": trials, "record": record, "mean_score": record / 2, "laps_completed": laps,
            "mean_progress": progress, "total_elapsed_time": 0.5,
            "evaluated_at": "2026-12-03 10:00:00.000000",
            "completion_percent": progress, "best_lap_time": best, "mean_lap_time": best,
            "off_track_count": trials - laps, "reference_lap_time": 17.13,
            "best_lap_ratio": round(best / 17.13, 3) if best else None, "car": "discrete", **more}


def test_lap_time_accounting_from_trial_results() -> None:
    track = get_track(1, "evaluation")
    n = track.num_waypoints
    results = [
        TrialResult(score=5.0, lap_complete=True, progress=100.0, steps=181, time=18.1, start=0),
        TrialResult(score=9.0, lap_complete=False, progress=40.0, steps=70, time=7.0, offtrack=True,
                    start=n // 5),
        TrialResult(score=7.0, lap_complete=True, progress=100.0, steps=164, time=16.4, start=2 * n // 5),
        TrialResult(score=1.0, lap_complete=False, progress=12.5, steps=900, time=90.0, start=3 * n // 5),
        TrialResult(score=2.0, lap_complete=True, progress=100.0, steps=200, time=20.05, start=4 * n // 5),
    ]
    figures = lap_metrics(results, track)
    assert set(figures) == LAP_KEYS - {"car", "algorithm"}
    assert figures["completion_percent"] == round((100 + 40 + 100 + 12.5 + 100) / 5, 2) == 70.5
    assert figures["best_lap_time"] == 16.4  # the third trial's: the fastest of the three laps
    assert figures["mean_lap_time"] == round((18.1 + 16.4 + 20.05) / 3, 2) == 18.18
    assert figures["off_track_count"] == 1  # the fourth ran out of steps: on the track
    assert figures["reference_lap_time"] == round(reference_lap_time(track, 0), 2)
    # The best lap against the reference from its own start (waypoint 2n/5), not the start line's.
    own = reference_lap_time(track, 2 * n // 5)
    assert own != reference_lap_time(track, 0)
    assert figures["best_lap_ratio"] == round(16.4 / own, 3)

    none = lap_metrics([TrialResult(score=1e6, lap_complete=False, progress=3.0, steps=9, time=0.9,
                                    offtrack=True)], track)
    assert none["best_lap_time"] is None and none["mean_lap_time"] is None and none["best_lap_ratio"] is None
    assert none["off_track_count"] == 1 and none["completion_percent"] == 3.0
    # A lapped trial that was not timed (an env without "time") has no lap time to count.
    untimed = lap_metrics([TrialResult(score=1.0, lap_complete=True, progress=100.0, steps=10)], track)
    assert untimed["best_lap_time"] is None and untimed["mean_lap_time"] is None


def test_a_real_evaluation_records_lap_times_beside_the_original_keys(store: SessionStore) -> None:
    driven_session(store, "lapper", ALIVE, laps=True)
    initial = store.read("lapper", "evaluation_metrics")
    assert initial == {"training": {"1": {}, "2": {}, "3": {}}, "evaluation": {"1": {}}}  # the seed shape
    trials: list[Any] = []
    recorded = evaluate(store, "lapper", "evaluation", 1, num_trials=5, on_event=trials.append)
    assert set(recorded) == ORIGINAL_KEYS | LAP_KEYS
    # The original keys keep their meaning: the reward function's scores (1 a step), laps and progress.
    assert recorded["num_trials"] == 5 and recorded["laps_completed"] == 5
    assert recorded["mean_progress"] == 100
    assert recorded["record"] == max(trial.steps for trial in trials)
    assert recorded["mean_score"] == sum(trial.steps for trial in trials) / 5
    # The new ones: every trial lapped, timed in simulated seconds, none left the track.
    times = [trial.time for trial in trials]
    assert all(trial.lap_complete and not trial.offtrack for trial in trials)
    assert times == [round(trial.steps * STEP_SECONDS, 2) for trial in trials]
    assert recorded["best_lap_time"] == min(times) and recorded["mean_lap_time"] == round(sum(times) / 5, 2)
    assert recorded["completion_percent"] == 100 and recorded["off_track_count"] == 0
    assert recorded["car"] == "classic"
    track = get_track(1, "evaluation")
    fastest = times.index(min(times))
    start = fastest * track.num_waypoints // 5
    assert recorded["reference_lap_time"] == round(reference_lap_time(track, 0), 2)
    assert recorded["best_lap_ratio"] == round(min(times) / reference_lap_time(track, start), 3)
    document = store.read("lapper", "evaluation_metrics")
    assert document["evaluation"]["1"] == recorded
    assert set(document) == {"training", "evaluation", "session_id"}
    assert document["training"] == {"1": {}, "2": {}, "3": {}}
    assert document["evaluation"]["total_elapsed_time"] == recorded["total_elapsed_time"]


def test_a_million_a_step_that_never_laps_ranks_below_a_car_that_laps(store: SessionStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case, through real evaluations: a reward of 1,000,000 a step whose car crashes has a
    final evaluation score millions of times larger, and ranks last on every leaderboard."""
    driven_session(store, "millions", MILLIONS, laps=False)
    driven_session(store, "lapper", ALIVE, laps=True)
    crashed = evaluate(store, "millions", "evaluation", 1, num_trials=5)
    lapped = evaluate(store, "lapper", "evaluation", 1, num_trials=5)
    assert crashed["laps_completed"] == 0 and crashed["off_track_count"] == 5
    assert crashed["best_lap_time"] is None and crashed["best_lap_ratio"] is None
    assert crashed["mean_progress"] < 20 and lapped["laps_completed"] == 5
    scores = {name: final_eval_score(store.read(name, "evaluation_metrics"))
              for name in ("millions", "lapper")}
    assert scores["millions"] > 1000 * scores["lapper"]

    standings = local_leaderboard(store.home)
    assert [s.session_id for s in standings] == ["lapper", "millions"]
    first, last = standings
    assert (first.laps_completed, first.best_lap_time, first.best_lap_ratio, first.car) == (
        5, lapped["best_lap_time"], lapped["best_lap_ratio"], "classic")
    assert first.reference_lap_time == lapped["reference_lap_time"]
    assert first.best_lap == (f"{lapped['best_lap_time']:g} s "
                              f"({lapped['best_lap_ratio']:.2f}{TIMES} reference)")
    assert last.score == scores["millions"] and last.best_lap_time is None and last.best_lap is None

    # The CLI's console took its width when it was made (80 without a terminal): one row a line needs more.
    monkeypatch.setattr(cli_console, "width", 200)
    shown = CliRunner().invoke(app, ["--home", str(store.home), "leaderboard"])
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if "lapper" in line or "millions" in line]
    assert "lapper" in rows[0] and "millions" in rows[1]
    assert "5/5" in rows[0] and f"({lapped['best_lap_ratio']:.2f}{TIMES} reference)" in rows[0]
    assert "0/5" in rows[1]
    listed = CliRunner().invoke(app, ["--home", str(store.home), "leaderboard", "--json"])
    assert [row["session_id"] for row in json.loads(listed.output)] == ["lapper", "millions"]

    evaluated = CliRunner().invoke(app, ["--home", str(store.home), "evaluate", "lapper", "--mode",
                                         "evaluation", "--json"])
    trials = json.loads(evaluated.output)["trials"]
    assert all(set(trial) == {"trial", "laps", "progress", "steps", "score", "time", "offtrack"}
               for trial in trials)
    assert [trial["time"] for trial in trials] == [round(t["steps"] * STEP_SECONDS, 2) for t in trials]
    table = CliRunner().invoke(app, ["--home", str(store.home), "evaluate", "millions", "--mode",
                                     "evaluation"], env={"COLUMNS": "200"}).output
    assert table.count("off track") >= 5 and "no lap" in table and "reference lap" in table


def test_the_racing_car_is_timed_and_the_faster_lap_ranks_first(store: SessionStore) -> None:
    """Real evaluations of three cars that need no training: the discrete car at 1.5 m/s laps faster than
    the classic car (1 m/s); at 2.5 m/s it runs off in the first bends, whatever its reward pays."""
    racing_session(store, "careful", ALIVE, speed=1.5)
    racing_session(store, "reckless", MILLIONS, speed=2.5)
    driven_session(store, "classic", ALIVE, laps=True)
    trials: list[Any] = []
    careful = evaluate(store, "careful", "evaluation", 1, num_trials=5, on_event=trials.append)
    reckless = evaluate(store, "reckless", "evaluation", 1, num_trials=5)
    classic = evaluate(store, "classic", "evaluation", 1, num_trials=5)
    assert (careful["car"], reckless["car"], classic["car"]) == ("discrete", "discrete", "classic")
    assert careful["laps_completed"] == 5 and careful["off_track_count"] == 0
    times = [trial.time for trial in trials]
    assert careful["best_lap_time"] == min(times) and careful["mean_lap_time"] == round(sum(times) / 5, 2)
    track = get_track(1, "evaluation")
    start = times.index(min(times)) * track.num_waypoints // 5
    assert careful["best_lap_ratio"] == round(min(times) / reference_lap_time(track, start), 3) > 1
    assert careful["best_lap_time"] < classic["best_lap_time"]
    assert reckless["laps_completed"] == 0 and reckless["off_track_count"] == 5
    assert reckless["record"] > classic["record"] * 1000
    assert [s.session_id for s in local_leaderboard(store.home)] == ["careful", "classic", "reckless"]


def test_ties_go_to_the_faster_lap_then_the_further_progress(store: SessionStore, evaluated_session: Any
                                                             ) -> None:
    boards = {
        "quick": metrics(best=18.0),
        "steady": metrics(best=20.0),
        "tied_far": metrics(trials=10, laps=5, progress=80.0, best=20.0),
        "tied_near": metrics(trials=10, laps=5, progress=70.0, best=20.0),
        "fewer": metrics(laps=3, progress=90.0, best=15.0),  # the fastest lap, but fewer of them
        "far": metrics(laps=0, progress=60.0, best=None),
        "millions": metrics(laps=0, progress=30.0, best=None, record=1e300),
    }
    for session_id, figures in boards.items():
        store.create(session_id)
        store.record_evaluation(session_id, "evaluation", "1", figures)
    # An evaluation made before lap times were recorded (the original's keys only): laps and progress.
    evaluated_session(store, "old_laps", record=10.0, laps=5, progress=100.0)
    standings = local_leaderboard(store.home)
    assert [s.session_id for s in standings] == ["quick", "steady", "tied_far", "tied_near", "old_laps",
                                                 "fewer", "far", "millions"]
    old = next(s for s in standings if s.session_id == "old_laps")
    assert (old.laps_completed, old.best_lap_time, old.best_lap_ratio, old.car, old.best_lap) == (
        5, None, None, None, None)
    assert store.standing("quick")["best_lap_time"] == 18.0
    assert store.standing("quick")["best_lap_ratio"] == round(18.0 / 17.13, 3)

    def standing(session_id: str, source: str = "local", **figures: Any) -> Standing:
        base = {"score": 1.0, "record": 1.0, "laps_completed": 5, "mean_progress": 100.0, "num_trials": 5}
        return Standing(session_id=session_id, user=None, source=source, **{**base, **figures})

    # cloud.rank: the same order for rows from anywhere; a push before its local session on a full tie.
    ranked = rank([standing("b", score=1e308, laps_completed=None, mean_progress=None),
                   standing("a", best_lap_time=12.0),
                   standing("a", "bucket", best_lap_time=12.0),
                   standing("c", best_lap_time=11.0, laps_completed=4)])
    assert [(s.session_id, s.source) for s in ranked] == [("a", "bucket"), ("a", "local"), ("c", "local"),
                                                          ("b", "local")]


def test_old_standings_and_documents_keep_working(store: SessionStore, evaluated_session: Any) -> None:
    # A standing file written before lap times (its figures and summary have the original's keys only).
    store.create("before")
    old_figures = {"num_trials": 5, "record": 40.0, "laps_completed": 2, "mean_progress": 70.0}
    old_standing = {"version": 1, "tracks": {"evaluation": {"1": old_figures}},
                    "summary": {"score": 8.0, **old_figures}}
    store.paths("before").state.mkdir(exist_ok=True)
    store.paths("before").standing.write_text(json.dumps(old_standing))
    evaluated_session(store, "legacy", record=30.0, laps=1, progress=55.0)  # no standing file at all
    standings = local_leaderboard(store.home)
    assert [(s.session_id, s.laps_completed, s.best_lap_time) for s in standings] == [
        ("before", 2, None), ("legacy", 1, None)]
    # Evaluated again on another track, the old figures are summarized as they are: still no lap time.
    store.record_evaluation("before", "training", "2", metrics(best=19.0))
    assert store.standing("before") == {"score": 8.0 + 100.0, "record": 40.0, "laps_completed": 2,
                                        "mean_progress": 70.0, "num_trials": 5, "best_lap_time": None,
                                        "best_lap_ratio": None, "reference_lap_time": None, "car": None,
                                        "algorithm": None}
    card = CliRunner().invoke(app, ["--home", str(store.home), "info", "legacy"], env={"COLUMNS": "200"})
    assert card.exit_code == 0, card.output


def test_figures_a_document_claims_are_checked() -> None:
    figures = track_figures(metrics(laps=0, best=12.0))
    assert figures["best_lap_time"] is None and figures["best_lap_ratio"] is None  # a lap time, no lap
    for bad in (-3.0, 0, float("inf"), float("nan"), "12", True):
        assert track_figures(metrics(best_lap_time=bad, best_lap_ratio=bad))["best_lap_time"] is None
    assert track_figures(metrics(car="rocket"))["car"] is None
    assert CARS == ACTION_SPACES  # scores.py keeps its own copy: it does not load NumPy
    summary = evaluation_summary({"evaluation": {"1": metrics(best=16.5)}})
    assert summary["best_lap_time"] == 16.5 and summary["car"] == "discrete"
    assert summary["laps_completed"] == 5
    assert evaluation_summary({"training": {"2": metrics()}})["best_lap_time"] is None  # not the held-out one
    assert lap_text(12.3, 1.1834) == f"12.3 s (1.18{TIMES} reference)"
    assert lap_text(12.0, None) == "12 s" and lap_text(None, 1.2) is None and lap_text(16.45, 0.97) == (
        f"16.45 s (0.97{TIMES} reference)")
