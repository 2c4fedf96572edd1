"""Training and evaluation runs on real session files: metrics, models, checkpoints, resume, events."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from rewards_api.agents.dqn import DQNSettings, QNetwork
from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.runs.evaluate import ModelNotTrained, evaluate
from rewards_api.runs.events import (
    EpisodeFinished,
    Event,
    FrameReady,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
)
from rewards_api.runs.train import Trainer, TrainingError, TrainingOptions
from rewards_api.store import SessionStore

FAST = TrainingOptions(num_cars=8, seed=0, settings=DQNSettings(learning_starts=64, batch_size=32))


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


def make_session(store: SessionStore, name: str = "s1", episodes: int = 30, reward: str | None = None,
                 model: str = "[[5, 9], [9, 3]]") -> str:
    store.create(name)
    store.write_env_params(name, EnvParams(environment_world=1))
    store.write_agent_params(name, AgentParams(num_episodes=episodes, model_configuration=model))
    store.write_training_params(name, TrainingParams(**({"reward_function": reward} if reward else {})))
    return name


def run(store: SessionStore, name: str,
        options: TrainingOptions = FAST) -> tuple[TrainingFinished, list[Event]]:
    events: list[Event] = []
    result = Trainer(store, name, options).run(events.append)
    return result, events


def test_a_run_trains_its_episodes_and_keeps_every_file_current(store: SessionStore) -> None:
    name = make_session(store, episodes=30)
    result, events = run(store, name)
    episodes = [e for e in events if isinstance(e, EpisodeFinished)]
    assert [e.episode for e in episodes] == list(range(1, 31))
    assert result.episodes == 30 and not result.stopped and events[-1] is result
    records = [e.record for e in episodes]
    assert records == sorted(records) and records[-1] == max(e.score for e in episodes) == result.record

    metrics = store.read(name, "training_metrics")
    scores, means = metrics["plot_scores"], metrics["plot_mean_scores"]
    assert scores == [e.score for e in episodes]
    assert means == pytest.approx([np.mean(scores[: i + 1]) for i in range(30)], abs=1e-3)

    trained = store.read(name, "model_history")["last_trained"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", trained["date"])
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", trained["time"])
    assert trained["record"] == max(scores)
    assert trained["scores"] == scores and trained["mean_scores"] == means
    assert store.read(name, "model_history")["last_created"]  # kept from write_agent_params

    paths = store.paths(name)
    network = QNetwork([(5, 9), (9, 3)])
    network.load_state_dict(torch.load(paths.model, weights_only=True))
    assert paths.resume_checkpoint.exists()
    top_level_json = sorted(p.name for p in paths.root.glob("*.json"))
    assert top_level_json == ["agent_params.json", "env_params.json", "evaluation_metrics.json",
                              "training_metrics.json", "training_params.json"]


def test_a_finished_run_continues_for_more_episodes(store: SessionStore) -> None:
    name = make_session(store, episodes=20)
    run(store, name)
    updates = torch.load(store.paths(name).resume_checkpoint, weights_only=True)["agent"]["updates"]
    result, events = run(store, name)
    assert result.episodes == 40
    assert isinstance(events[0], TrainingStarted)
    assert (events[0].episode, events[0].episodes, events[0].layers) == (20, 40, [[5, 9], [9, 3]])
    assert next(e.episode for e in events if isinstance(e, EpisodeFinished)) == 21
    assert len(store.read(name, "training_metrics")["plot_scores"]) == 40
    assert torch.load(store.paths(name).resume_checkpoint, weights_only=True)["agent"]["updates"] > updates


def test_a_stopped_run_resumes_where_it_stopped(store: SessionStore) -> None:
    name = make_session(store, episodes=40)
    trainer = Trainer(store, name, FAST)

    def stop_at_ten(event: Event) -> None:
        if isinstance(event, EpisodeFinished) and event.episode == 10:
            trainer.stop()

    first = trainer.run(stop_at_ten)
    assert first.stopped and 10 <= first.episodes < 40
    assert len(store.read(name, "training_metrics")["plot_scores"]) == first.episodes
    second, _ = run(store, name)
    assert second.episodes == 40 and not second.stopped
    assert len(store.read(name, "training_metrics")["plot_scores"]) == 40


def test_fresh_and_a_new_network_start_a_new_model(store: SessionStore) -> None:
    name = make_session(store, episodes=15)
    run(store, name)
    restarted, _ = run(store, name, TrainingOptions(num_cars=8, fresh=True, settings=FAST.settings))
    assert restarted.episodes == 15
    store.write_agent_params(name, AgentParams(num_episodes=15, model_configuration="[[5, 16], [16, 3]]"))
    changed, _ = run(store, name)
    assert changed.episodes == 15
    network = QNetwork([(5, 16), (16, 3)])
    network.load_state_dict(torch.load(store.paths(name).model, weights_only=True))


def test_a_failing_reward_function_fails_the_run_with_its_line_and_saves(store: SessionStore) -> None:
    reward = ("def reward_function(params):\n    if params['steps'] > 8:\n"
              "        return params['nope']\n    return 1\n")
    name = make_session(store, episodes=500, reward=reward)
    events: list[Event] = []
    with pytest.raises(TrainingError, match="KeyError") as caught:
        Trainer(store, name, FAST).run(events.append)
    assert isinstance(events[-1], TrainingFailed) and "line 3" in events[-1].message
    assert caught.value.event is events[-1]
    assert store.paths(name).resume_checkpoint.exists()


def test_frames_are_produced_on_demand(store: SessionStore) -> None:
    name = make_session(store, episodes=12)
    trainer = Trainer(store, name, FAST)
    frames: list[FrameReady] = []

    def on_event(event: Event) -> None:
        if isinstance(event, FrameReady):
            frames.append(event)
        elif isinstance(event, EpisodeFinished) and event.episode in (2, 6):
            trainer.request_frame()

    trainer.run(on_event)
    assert len(frames) == 2
    assert all(f.jpeg[:2] == b"\xff\xd8" for f in frames)


def test_several_tracks_train_at_once(store: SessionStore) -> None:
    name = make_session(store, episodes=40)
    _, events = run(store, name, TrainingOptions(num_cars=8, tracks=(1, 3), settings=FAST.settings))
    assert {e.track for e in events if isinstance(e, EpisodeFinished)} == {"training-1", "training-3"}


def test_evaluation_records_its_metrics_in_the_seed_shape(store: SessionStore) -> None:
    name = make_session(store, episodes=20)
    with pytest.raises(ModelNotTrained, match="train it first"):
        evaluate(store, name, "training", 1)
    run(store, name)
    metrics = evaluate(store, name, "evaluation", 1, num_trials=3)
    assert set(metrics) == {"num_trials", "record", "mean_score", "laps_completed", "mean_progress",
                            "total_elapsed_time", "evaluated_at",  # the original's, then the lap figures
                            "completion_percent", "best_lap_time", "mean_lap_time", "off_track_count",
                            "reference_lap_time", "best_lap_ratio", "car", "algorithm"}
    assert datetime.strptime(metrics["evaluated_at"], "%Y-%m-%d %H:%M:%S.%f") <= datetime.now()
    assert metrics["num_trials"] == 3 and 0 <= metrics["laps_completed"] <= 3
    assert metrics["record"] >= metrics["mean_score"] and 0 <= metrics["mean_progress"] <= 100
    evaluate(store, name, "training", 2)
    document = store.read(name, "evaluation_metrics")
    assert document["session_id"] == name
    assert document["evaluation"]["1"] == metrics
    assert document["training"]["2"]["num_trials"] == 5
    assert document["training"]["1"] == {} and document["training"]["3"] == {}
    assert document["training"]["total_elapsed_time"] == document["training"]["2"]["total_elapsed_time"]
