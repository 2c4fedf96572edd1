"""Retraining a session's model: warm starts, resumed runs, fresh starts, track changes, the runs history."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rewards_api.agents.dqn import DQNSettings, QNetwork
from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.runs.events import EpisodeFinished, Event, TrainingFinished, TrainingStarted
from rewards_api.runs.train import WARM_START_EPSILON_SHARE, Trainer, TrainingOptions
from rewards_api.store import SessionStore

FAST = TrainingOptions(num_cars=8, seed=0, settings=DQNSettings(learning_starts=64, batch_size=32))
EPSILON = 0.2  # the session's epsilon (AgentParams' default of 20 %)
COMMAND = str(Path(sys.executable).parent / "rewards-api")


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


def make_session(store: SessionStore, name: str, episodes: int) -> str:
    store.create(name)
    store.write_env_params(name, EnvParams(environment_world=1))
    store.write_agent_params(name, AgentParams(num_episodes=episodes, model_configuration="[[5, 9], [9, 3]]"))
    store.write_training_params(name, TrainingParams())
    return name


def train(store: SessionStore, name: str, stop_after: int | None = None,
          **options: Any) -> tuple[TrainingFinished, list[Event]]:
    """One run with FAST's settings (and ``options``); ``stop_after``: stop it after that many episodes."""
    events: list[Event] = []
    trainer = Trainer(store, name, replace(FAST, **options))

    def on_event(event: Event) -> None:
        events.append(event)
        if stop_after is not None and sum(isinstance(e, EpisodeFinished) for e in events) == stop_after:
            trainer.stop()

    return trainer.run(on_event), events


def episodes_of(events: list[Event]) -> list[EpisodeFinished]:
    return [event for event in events if isinstance(event, EpisodeFinished)]


def runs(store: SessionStore, name: str) -> list[dict]:
    return store.read(name, "model_history").get("runs", [])


def test_a_warm_start_continues_from_the_saved_weights_and_fresh_starts_over(store: SessionStore) -> None:
    name = make_session(store, "lapper", episodes=120)
    # Raw rewards: this seed's 120 episodes give a model that laps track 1 (normalized, this seed's does not).
    store.write_agent_params(name, AgentParams(num_episodes=120, model_configuration="[[5, 9], [9, 3]]",
                                               normalize_rewards=False))
    train(store, name)  # a model that laps track 1
    store.write_agent_params(name, AgentParams(num_episodes=30, model_configuration="[[5, 9], [9, 3]]",
                                               normalize_rewards=False))

    _, warm = train(store, name, seed=7)
    started = warm[0]
    assert isinstance(started, TrainingStarted)
    assert (started.episode, started.episodes, started.record) == (120, 150, None)
    warm_episodes = episodes_of(warm)
    assert warm_episodes[0].episode == 121
    assert warm_episodes[0].epsilon == pytest.approx(WARM_START_EPSILON_SHARE * EPSILON)
    assert warm_episodes[-1].epsilon == DQNSettings().epsilon_floor  # it decays over this run's episodes
    assert len(store.read(name, "training_metrics")["plot_scores"]) == 150

    _, fresh = train(store, name, seed=7, fresh=True)
    fresh_episodes = episodes_of(fresh)
    assert fresh_episodes[0].episode == 1 and fresh_episodes[0].epsilon == pytest.approx(EPSILON)
    # Same seed, same starting places: the saved weights drive on where new ones crash at once.
    warm_first = np.mean([e.score for e in warm_episodes[:8]])
    fresh_first = np.mean([e.score for e in fresh_episodes[:8]])
    assert warm_first > 5 * fresh_first, (warm_first, fresh_first)

    assert [run["start"] for run in runs(store, name)] == ["fresh"]  # a new model begins a new history
    assert len(store.read(name, "training_metrics")["plot_scores"]) == 30


def test_the_runs_history_follows_resumes_warm_starts_and_track_changes(store: SessionStore) -> None:
    name = make_session(store, "history", episodes=20)
    train(store, name)
    paths = store.paths(name)
    first_model = paths.model.read_bytes()
    stopped, stopped_events = train(store, name, stop_after=6)  # a warm start, interrupted
    assert stopped.stopped and stopped.episodes < 40
    resumed, resumed_events = train(store, name)  # finishes that run: exploration goes on where it was
    assert resumed.episodes == 40
    assert episodes_of(resumed_events)[0].epsilon <= episodes_of(stopped_events)[-1].epsilon

    # Another track, and other hyper-parameters for the same network: the model (and its history) carry on.
    store.write_env_params(name, EnvParams(environment_world=2))
    store.write_agent_params(name, AgentParams(num_episodes=10, model_configuration=[[5, 9], [9, 3]]))
    assert len(runs(store, name)) == 3
    on_two, _ = train(store, name, stop_after=3)
    assert on_two.stopped
    # An interrupted run does not resume on other tracks: it is a warm start there.
    both, both_events = train(store, name, tracks=(1, 2))
    assert episodes_of(both_events)[0].epsilon == pytest.approx(WARM_START_EPSILON_SHARE * EPSILON)
    assert both.episodes == on_two.episodes + 10

    history = store.read(name, "model_history")
    entries = history["runs"]
    assert [(run["start"], run["track"]) for run in entries] == [
        ("fresh", "training-1"), ("warm", "training-1"), ("resumed", "training-1"), ("warm", "training-2"),
        ("warm", "training-1,training-2")]
    scores = store.read(name, "training_metrics")["plot_scores"]
    counts = [run["episodes"] for run in entries]
    assert counts[0] == 20 and counts[1] + counts[2] == 20 and sum(counts) == len(scores) == both.episodes
    ends = np.cumsum([0, *counts])
    for run, start, end in zip(entries, ends, ends[1:], strict=False):
        assert run["record"] == max(scores[start:end])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", run["date"]) and re.fullmatch(r"\d\d:\d\d:\d\d", run["time"])
        assert isinstance(run["duration"], float) and run["duration"] == round(run["duration"], 1) >= 0
    assert sum(run["steps"] for run in entries) == both.steps
    # model.pth is the best network of the latest run, whose record last_trained gives.
    assert history["last_trained"]["record"] == entries[-1]["record"] == both.record
    assert paths.model.read_bytes() != first_model
    QNetwork([(5, 9), (9, 3)]).load_state_dict(torch.load(paths.model, weights_only=True))

    # A new network shape is a new model: its history starts again, with a fresh run.
    store.write_agent_params(name, AgentParams(num_episodes=10, model_configuration="[[5, 12], [12, 3]]"))
    assert "runs" not in store.read(name, "model_history")
    train(store, name)
    assert [(run["start"], run["episodes"]) for run in runs(store, name)] == [("fresh", 10)]


def test_a_run_that_stops_before_an_episode_still_has_its_entry(store: SessionStore) -> None:
    name = make_session(store, "instant", episodes=10)
    train(store, name)
    model = store.paths(name).model.read_bytes()
    result, _ = train(store, name, max_seconds=0)
    assert result.stopped and result.record is None
    last = runs(store, name)[-1]
    assert (last["start"], last["episodes"], last["record"], last["steps"]) == ("warm", 0, None, 0)
    assert store.paths(name).model.read_bytes() == model  # nothing better to save: the model stays


def cli(home: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([COMMAND, "--home", str(home), *args], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_command_line_starts_fresh_on_another_track(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = SessionStore(home)
    name = make_session(store, "demo", episodes=15)
    train(store, name)
    train(store, name)
    assert [run["start"] for run in runs(store, name)] == ["fresh", "warm"]
    fresh = cli(home, "train", "demo", "--cars", "8", "--fresh", "--track", "2")
    assert "A new dqn model on training-2 with 8 cars: episodes 1-15" in fresh.stdout
    assert "Training finished: 15 episodes" in fresh.stdout
    assert [(run["start"], run["track"], run["episodes"]) for run in runs(store, name)] == [
        ("fresh", "training-2", 15)]
    assert len(store.read(name, "training_metrics")["plot_scores"]) == 15

    both = cli(home, "train", "demo", "--track", "2", "--tracks", "1,3", code=2)
    assert "--track 2 and --tracks 1,3 cannot be used together" in both.stderr
    unknown = cli(home, "train", "demo", "--track", "7", code=2)
    assert "there is no training track 7" in unknown.stderr
