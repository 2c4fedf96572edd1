"""Evaluating a session's best model: greedy trials on one track, recorded in evaluation_metrics.json.

Trial 1 starts on the start line; trial ``k`` of ``n`` starts ``(k - 1) / n`` of the way round the track,
so the trials differ (the simulator and a greedy policy are deterministic) and together they test the
whole track. Each trial drives one lap at most, scored by the session's reward function.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import gymnasium as gym
import numpy as np
import torch

from ..agents.dqn import QNetwork, load_q_network
from ..envs import ENV_ID
from ..envs.reward import compile_reward_source
from ..scores import final_eval_score
from ..store import SessionStore
from .events import Event, TrialFinished, score_value
from .train import SessionSetup, load_setup

__all__ = ["DEFAULT_TRIALS", "CarPose", "ModelNotTrained", "TrialResult", "evaluate", "final_eval_score",
           "greedy_trials", "load_best_model"]

DEFAULT_TRIALS = 5  # the CLI repeats this default so that it need not import PyTorch


class ModelNotTrained(RuntimeError):
    """The session has no saved model yet (or one for another model configuration)."""


@dataclass(frozen=True)
class TrialResult:
    score: float
    lap_complete: bool
    progress: float
    steps: int


CarPose = tuple[float, float, int, list[float], float, float]
"""One step of a trial for replaying it: ``(x, y, heading index, radars, score, progress)``."""


def load_best_model(store: SessionStore, session_id: str, setup: SessionSetup | None = None) -> QNetwork:
    """The session's ``model.pth`` in a Q-network built from its ``model_configuration`` (``setup``:
    the session's parameters, when the caller has read them already)."""
    setup = setup or load_setup(store, session_id)
    path = store.paths(session_id).model
    if not path.exists():
        raise ModelNotTrained(f"session {session_id!r} has no trained model yet: train it first")
    try:
        return load_q_network(setup.config.layers, str(path))
    except RuntimeError as exc:
        raise ModelNotTrained(
            f"session {session_id!r}: model.pth was trained for another model_configuration than "
            f"{setup.agent.model_configuration}; train the session again"
        ) from exc


def greedy_trials(network: QNetwork, env: gym.Env, num_trials: int,
                  on_event: Callable[[Event], None] | None = None,
                  poses: list[list[CarPose]] | None = None) -> list[TrialResult]:
    """Drive ``num_trials`` greedy laps from evenly spaced starts (trial 1 on the start line).

    With ``poses``, each trial's steps are appended to it (one list per trial) so it can be replayed.
    """
    torch.set_num_threads(1)
    env = env.unwrapped
    results = []
    for trial in range(num_trials):
        start = trial * env.track.num_waypoints // num_trials
        observation, _ = env.reset(options={"start_waypoint": start})
        car = env.car
        trail: list[CarPose] = []
        while True:
            trail.append((car.x, car.y, car.heading, list(car.radars), car.score, car.progress))
            with torch.no_grad():
                action = int(network(torch.from_numpy(observation[None])).argmax())
            observation, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                trail.append((car.x, car.y, car.heading, list(car.radars), car.score, car.progress))
                break
        if poses is not None:
            poses.append(trail)
        result = TrialResult(score=float(info["score"]), lap_complete=bool(info["lap_complete"]),
                             progress=float(info["progress"]), steps=int(info["steps"]))
        results.append(result)
        if on_event is not None:
            on_event(TrialFinished(trial=trial + 1, score=result.score, lap_complete=result.lap_complete,
                                   progress=result.progress, steps=result.steps))
    return results


def evaluate(
    store: SessionStore,
    session_id: str,
    mode: str = "training",
    track: int | str = 1,
    num_trials: int = DEFAULT_TRIALS,
    on_event: Callable[[Event], None] | None = None,
    poses: list[list[CarPose]] | None = None,
) -> dict:
    """Run ``num_trials`` greedy trials and record them; returns the track's metrics object.

    With ``poses``, every trial's steps are collected there too (see :func:`greedy_trials`).
    """
    if not 1 <= int(num_trials) <= 100:
        raise ValueError(f"num_trials must be 1..100, not {num_trials!r}")
    emit = on_event or (lambda event: None)
    setup = load_setup(store, session_id)
    network = load_best_model(store, session_id, setup)
    reward = compile_reward_source(setup.reward_source)
    env = gym.make(ENV_ID, track=track, mode=mode, reward_function=reward).unwrapped
    started = time.perf_counter()
    results = greedy_trials(network, env, num_trials, emit, poses)
    elapsed = time.perf_counter() - started
    metrics = {
        "num_trials": num_trials,
        "record": score_value(max(r.score for r in results)),
        "mean_score": score_value(np.mean([r.score for r in results])),
        "laps_completed": sum(r.lap_complete for r in results),
        "mean_progress": round(float(np.mean([r.progress for r in results])), 2),
        "total_elapsed_time": round(elapsed, 4),
        "evaluated_at": datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    store.record_evaluation(session_id, mode, str(track), metrics)
    return metrics
