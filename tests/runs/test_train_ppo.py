"""PPO sessions on real session files: the model, checkpoints, resume and warm start, the switch from DQN,
the reward normalizer's state, and evaluation of the continuous car."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rewards_api.agents.dqn import DQNSettings, QNetwork
from rewards_api.params import AgentParams, EnvParams, TrainingParams, check_trainable
from rewards_api.runs.evaluate import evaluate, load_best_model
from rewards_api.runs.events import EpisodeFinished, Event, TrainingFinished, TrainingStarted
from rewards_api.runs.train import Trainer, TrainingOptions
from rewards_api.store import SessionStore

PPO_FAST = TrainingOptions(num_cars=16, seed=0)
DQN_FAST = TrainingOptions(num_cars=8, seed=0, settings=DQNSettings(learning_starts=64, batch_size=32))
SMALL = {"discrete": "[[6, 16], [16, 15]]", "continuous": "[[6, 16], [16, 2]]", "classic": "[[5, 9], [9, 3]]"}
PPO_KEYS = {"batch_size": 64, "rollout_length": 8, "num_epochs": 2}


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


def make_session(store: SessionStore, name: str = "p1", car: str = "continuous", episodes: int = 40,
                 algorithm: str = "ppo", reward: str | None = None, **agent: object) -> str:
    store.create(name)
    store.write_env_params(name, EnvParams(environment_world=1, action_space=car))
    keys = PPO_KEYS if algorithm == "ppo" else {}
    store.write_agent_params(name, AgentParams(num_episodes=episodes, model_configuration=SMALL[car],
                                               learning_rate=0.001, **{**keys, **agent}))
    training = {"learning_algorithm": algorithm, **({"reward_function": reward} if reward else {})}
    store.write_training_params(name, TrainingParams(**training))
    return name


def run(store: SessionStore, name: str, options: TrainingOptions = PPO_FAST
        ) -> tuple[TrainingFinished, list[Event]]:
    events: list[Event] = []
    return Trainer(store, name, options).run(events.append), events


def checkpoint(store: SessionStore, name: str) -> dict:
    return torch.load(store.paths(name).resume_checkpoint, map_location="cpu", weights_only=True)


def test_a_ppo_run_saves_the_policy_as_model_pth_and_its_checkpoint(store: SessionStore) -> None:
    name = make_session(store)
    finished, events = run(store, name)
    started = events[0]
    assert isinstance(started, TrainingStarted) and started.algorithm == "ppo" and started.start == "fresh"
    assert started.message is None
    assert finished.episodes == 40 and not finished.stopped
    episodes = [e for e in events if isinstance(e, EpisodeFinished)]
    assert [e.episode for e in episodes] == list(range(1, 41)) and {e.epsilon for e in episodes} == {None}
    # model.pth: the actor's state_dict, nothing else, loadable without unpickling code.
    state = torch.load(store.paths(name).model, map_location="cpu", weights_only=True)
    assert set(state) == {"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"}
    assert state["layers.2.weight"].shape == (2, 16)  # steering and speed
    QNetwork([(6, 16), (16, 2)]).load_state_dict(state)
    saved = checkpoint(store, name)
    assert saved["algorithm"] == "ppo"
    assert set(saved["agent"]) == {"actor", "critic", "log_std", "optimizer", "updates"}
    assert saved["agent"]["updates"] >= 1
    normalizer = saved["normalizer"]
    assert normalizer["count"] > 0 and normalizer["var"] > 0
    history = store.read(name, "model_history")
    assert history["last_trained"]["car"]["action_space"] == "continuous"
    assert history["runs"][-1]["start"] == "fresh"
    assert len(store.read(name, "training_metrics")["plot_scores"]) == 40


def test_the_continuous_car_is_evaluated_greedily_within_its_bounds(store: SessionStore) -> None:
    name = make_session(store, episodes=20)
    run(store, name)
    network = load_best_model(store, name)
    assert network.continuous
    observations = np.random.default_rng(0).random((256, 6)).astype(np.float32) * np.array(
        [200, 200, 200, 200, 200, 4], dtype=np.float32)
    with torch.no_grad():
        network.layers[-1].bias.copy_(torch.tensor([40.0, -40.0]))  # far outside [-1, 1]
    actions = network.greedy(observations)
    assert actions.shape == (256, 2)
    assert (actions[:, 0] == 30.0).all() and (actions[:, 1] == 0.5).all()
    metrics = evaluate(store, name, mode="evaluation", track=1, num_trials=2)
    assert metrics["num_trials"] == 2 and metrics["car"] == "continuous"


def test_a_stopped_ppo_run_resumes_with_its_normalizer_and_a_finished_one_warm_starts(
        store: SessionStore) -> None:
    name = make_session(store, episodes=60)
    trainer = Trainer(store, name, PPO_FAST)

    def stop_at_20(event: Event) -> None:
        if isinstance(event, EpisodeFinished) and event.episode == 20:
            trainer.stop()

    stopped = trainer.run(stop_at_20)
    assert stopped.stopped and stopped.episodes == 20
    saved = checkpoint(store, name)
    resumed_trainer = Trainer(store, name, PPO_FAST)
    finished = resumed_trainer.run()
    assert resumed_trainer.start_kind == "resumed" and finished.episodes == 60
    # The resumed run started from the saved estimate (not a new one) and the saved networks.
    assert resumed_trainer.normalizer is not None and resumed_trainer.normalizer.count > saved["normalizer"][
        "count"]
    assert resumed_trainer.agent.updates > saved["agent"]["updates"]

    warm = Trainer(store, name, PPO_FAST)
    before = checkpoint(store, name)
    warm_events: list[Event] = []
    result = warm.run(warm_events.append)
    assert warm.start_kind == "warm" and result.episodes == 60 + 60
    first = warm_events[0]
    assert isinstance(first, TrainingStarted) and first.start == "warm" and first.message is None
    assert [run["start"] for run in store.read(name, "model_history")["runs"]] == ["fresh", "resumed", "warm"]
    # The warm start began from the finished run's actor, not new weights.
    assert warm.agent.updates > before["agent"]["updates"]


def test_a_warm_start_loads_the_saved_normalizer(store: SessionStore) -> None:
    name = make_session(store, episodes=20)
    run(store, name)
    saved = checkpoint(store, name)["normalizer"]
    trainer = Trainer(store, name, TrainingOptions(num_cars=16, seed=0, max_seconds=0.0))
    trainer.run()  # no step: what it loaded is what it saves
    assert trainer.start_kind == "warm"
    assert checkpoint(store, name)["normalizer"] == saved


def test_normalization_can_be_turned_off(store: SessionStore) -> None:
    name = make_session(store, episodes=20, normalize_rewards=False)
    assert "normalize_rewards" in store.read(name, "agent_params")
    trainer = Trainer(store, name, PPO_FAST)
    trainer.run()
    assert trainer.normalizer is None and checkpoint(store, name)["normalizer"] is None


def test_a_session_switched_from_dqn_to_ppo_starts_a_new_model_and_says_so(store: SessionStore) -> None:
    name = make_session(store, car="discrete", algorithm="dqn", episodes=30)
    run(store, name, DQN_FAST)
    assert checkpoint(store, name)["algorithm"] == "dqn"
    dqn_model = store.paths(name).model.read_bytes()
    store.write_training_params(name, TrainingParams(learning_algorithm="ppo"))
    finished, events = run(store, name)
    started = events[0]
    assert isinstance(started, TrainingStarted) and started.start == "fresh" and started.algorithm == "ppo"
    assert started.message is not None
    assert "learning_algorithm changed from dqn to ppo" in started.message
    assert "a new ppo model starts" in started.message
    assert finished.episodes == 30  # a new model: its own 30 episodes, not 30 more
    history = store.read(name, "model_history")
    assert [run["start"] for run in history["runs"]] == ["fresh"]
    assert len(store.read(name, "training_metrics")["plot_scores"]) == 30
    assert checkpoint(store, name)["algorithm"] == "ppo"
    assert store.paths(name).model.read_bytes() != dqn_model
    # ... and back to DQN: a new DQN model again, from the DQN network of the same shape.
    store.write_training_params(name, TrainingParams(learning_algorithm="dqn"))
    _, events = run(store, name, DQN_FAST)
    assert events[0].start == "fresh" and "from ppo to dqn" in (events[0].message or "")


def test_the_continuous_car_trains_with_ppo_only() -> None:
    check_trainable(EnvParams(action_space="continuous"), "ppo")
    for car in ("classic", "discrete"):
        check_trainable(EnvParams(action_space=car), "ppo")


@pytest.mark.parametrize("algorithm", ["dqn", "ppo"])
def test_a_reward_a_million_times_larger_drives_the_same_episodes(store: SessionStore, algorithm: str
                                                                  ) -> None:
    """With normalization the learner sees the same numbers whatever the reward's scale: the same seed
    drives the same episodes, their scores a million times larger (to float rounding)."""
    scores = {}
    for factor in (1, 1_000_000):
        reward = ("def reward_function(params):\n"
                  f"    return {factor} * params['speed'] if params['is_alive'] else 0\n")
        name = make_session(store, f"{algorithm}{factor}", car="discrete", algorithm=algorithm, episodes=150,
                            reward=reward)
        _, events = run(store, name, PPO_FAST if algorithm == "ppo" else DQN_FAST)
        scores[factor] = [e.score for e in events if isinstance(e, EpisodeFinished)]
    assert len(scores[1]) == len(scores[1_000_000]) == 150
    assert np.allclose(np.array(scores[1_000_000]) / 1e6, scores[1], rtol=1e-4)
    assert max(scores[1_000_000]) > 1e6  # the scores stay in the reward's own units


def test_the_model_history_and_card_name_the_algorithm_and_a_switch_is_explained(store: SessionStore) -> None:
    from rewards_api.cards import model_card
    from rewards_api.server.routes import algorithm_switch

    name = make_session(store, car="discrete", algorithm="dqn", episodes=20)
    assert algorithm_switch(store, name, "ppo") is None  # nothing trained yet: nothing to replace
    run(store, name, DQN_FAST)
    history = store.read(name, "model_history")
    assert "algorithm" not in history["last_trained"]  # DQN's history keeps the original's keys
    assert history["runs"][-1]["algorithm"] == "dqn"
    assert "from dqn to ppo: the next training starts a new ppo model" in algorithm_switch(store, name, "ppo")
    store.write_training_params(name, TrainingParams(learning_algorithm="ppo"))
    # Changed back before training again: the DQN model carries on, nothing to say.
    assert algorithm_switch(store, name, "dqn") is None
    run(store, name)
    history = store.read(name, "model_history")
    assert history["last_trained"]["algorithm"] == "ppo" and history["runs"][-1]["algorithm"] == "ppo"
    card = model_card(store, name)
    assert card["model"]["algorithm"] == "ppo" and card["model"]["normalize_rewards"] is True
    assert card["model"]["ppo"] == {"batch_size": 4096, "num_epochs": 4, "beta_entropy": 0.01,  # defaults
                                    "rollout_length": 32, "clip_range": 0.2, "gae_lambda": 0.95}


def test_evaluations_and_leaderboards_name_the_algorithm_that_trained_the_model(store: SessionStore) -> None:
    from rewards_api.cloud import local_leaderboard

    name = make_session(store, episodes=20)
    run(store, name)
    metrics = evaluate(store, name, mode="evaluation", track=1, num_trials=1)
    assert metrics["algorithm"] == "ppo" and metrics["car"] == "continuous"
    # Switched to DQN but not trained again: the model evaluated is still PPO's.
    store.write_training_params(name, TrainingParams(learning_algorithm="dqn"))
    assert store.standing(name)["algorithm"] == "ppo"
    (standing,) = local_leaderboard(store.home)
    assert standing.algorithm == "ppo" and standing.entry()["algorithm"] == "ppo"
