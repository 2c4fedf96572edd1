"""Evaluating a session's best model: greedy trials on one track, recorded in evaluation_metrics.json.

Trial 1 starts on the start line; trial ``k`` of ``n`` starts ``(k - 1) / n`` of the way round the track,
so the trials differ (the simulator and a greedy policy are deterministic) and together they test the
whole track. Each trial drives one lap at most, scored by the session's reward function.

Besides the original's figures (in the reward function's units), each evaluation records what does not
depend on the reward function: laps completed, completion %, the best and mean lap time in simulated
seconds, how many trials left the track, and the best lap against the track's reference lap
(:func:`rewards_api.envs.reference.reference_lap_time`, the fastest lap the physics allows along the
centre line) from that trial's own start. The leaderboards rank by those (:mod:`rewards_api.scores`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ..agents.dqn import QNetwork, load_q_network
from ..envs import ENV_ID
from ..envs.physics import STEP_SECONDS
from ..envs.reference import reference_lap_time
from ..envs.reward import compile_reward_source
from ..envs.tracks import Track
from ..scores import final_eval_score
from ..store import SessionStore
from .events import Event, TrialFinished, score_value
from .train import SessionSetup, action_bounds, load_setup, observation_high

__all__ = ["DEFAULT_TRIALS", "CarPose", "ModelNotTrained", "TrialResult", "evaluate", "final_eval_score",
           "greedy_trials", "lap_metrics", "load_best_model"]

DEFAULT_TRIALS = 5  # the CLI repeats this default so that it need not import PyTorch


class ModelNotTrained(RuntimeError):
    """The session has no saved model yet (or one for another model configuration)."""


@dataclass(frozen=True)
class TrialResult:
    """How one greedy trial ended: its score (the reward function's units), whether it completed the lap,
    its progress (%) and steps; ``time``: simulated seconds it drove (the lap time when it lapped; ``None``
    if unknown), ``offtrack``: it ended by leaving the track, ``start``: the waypoint it started at."""

    score: float
    lap_complete: bool
    progress: float
    steps: int
    time: float | None = None
    offtrack: bool = False
    start: int = 0

    @property
    def lap_time(self) -> float | None:
        """Seconds of the lap, for a trial that completed it (and was timed); else ``None``."""
        return self.time if self.lap_complete and self.time is not None else None


CarPose = tuple[float, float, float, list[float], float, float, float]
"""One step of a trial for replaying it: ``(x, y, heading in radians, radars, score, progress, speed m/s)``;
the step's number and the lap time follow from its place in the trial."""


def load_best_model(store: SessionStore, session_id: str, setup: SessionSetup | None = None) -> QNetwork:
    """The session's ``model.pth`` in a Q-network built from its ``model_configuration`` (``setup``:
    the session's parameters, when the caller has read them already)."""
    setup = setup or load_setup(store, session_id)
    path = store.paths(session_id).model
    if not path.exists():
        raise ModelNotTrained(f"session {session_id!r} has no trained model yet: train it first")
    trained = store.read(session_id, "model_history").get("last_trained")
    trained_car = trained.get("car") if isinstance(trained, dict) else None
    car = setup.env.car()
    trained_car = trained_car or {"action_space": "classic"}
    if trained_car != car:
        was, now = trained_car.get("action_space"), car["action_space"]
        change = (f"for the {was} car, and the session drives the {now} car now" if was != now else
                  f"with other {'actions' if now == 'discrete' else 'speeds'} than the session's now")
        raise ModelNotTrained(f"session {session_id!r}: model.pth was trained {change}: train the session "
                              "again (a new model starts)")
    try:
        return load_q_network(setup.config.layers, str(path), observation_high(setup.env),
                              action_bounds(setup.env))
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
            trail.append(_pose(car))
            action = network.greedy_action(observation)
            observation, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                trail.append(_pose(car))
                break
        if poses is not None:
            poses.append(trail)
        result = _trial_result(info, truncated, start)
        results.append(result)
        if on_event is not None:
            on_event(TrialFinished(trial=trial + 1, score=result.score, lap_complete=result.lap_complete,
                                   progress=result.progress, steps=result.steps,
                                   time=round(result.time, 2) if result.time is not None else None,
                                   offtrack=result.offtrack))
    return results


def _pose(car: Any) -> CarPose:
    return (car.x, car.y, car.heading_radians, list(car.radars), car.score, car.progress, car.speed)


def _trial_result(info: dict[str, Any], truncated: bool, start: int) -> TrialResult:
    """A trial's result from its last step's ``info``. An env without ``time`` or ``offtrack`` (the classic
    car before they were added) is timed from its steps, and left the track if it ended neither with a lap
    nor by running out of steps."""
    lap_complete = bool(info["lap_complete"])
    steps = int(info["steps"])
    seconds = info.get("time")
    return TrialResult(score=float(info["score"]), lap_complete=lap_complete,
                       progress=float(info["progress"]), steps=steps,
                       time=float(seconds if seconds is not None else steps * STEP_SECONDS),
                       offtrack=bool(info.get("offtrack", not lap_complete and not truncated)), start=start)


def lap_metrics(results: Sequence[TrialResult], track: Track) -> dict[str, Any]:
    """The figures of an evaluation that do not depend on the reward function (added to the original's in
    evaluation_metrics.json): ``completion_percent`` (mean progress, %), ``best_lap_time`` and
    ``mean_lap_time`` (seconds, over the trials that lapped; ``None`` without a lap), ``off_track_count``
    (trials that ended off the track), ``reference_lap_time`` (seconds, from the start line) and
    ``best_lap_ratio``: the best lap over the reference lap from its own trial's start (a standing start
    at a bend is slower than one on a straight), ``None`` without a lap. Seconds to 2 decimals, the ratio
    to 3."""
    laps = [result for result in results if result.lap_time is not None]
    best = min(laps, key=lambda result: result.lap_time, default=None)
    return {
        "completion_percent": round(float(np.mean([r.progress for r in results])), 2) if results else 0.0,
        "best_lap_time": round(best.lap_time, 2) if best is not None else None,
        "mean_lap_time": round(float(np.mean([r.lap_time for r in laps])), 2) if laps else None,
        "off_track_count": sum(bool(r.offtrack) for r in results),
        "reference_lap_time": round(reference_lap_time(track, 0), 2),
        "best_lap_ratio": round(best.lap_time / reference_lap_time(track, best.start), 3)
        if best is not None else None,
    }


def evaluate(
    store: SessionStore,
    session_id: str,
    mode: str = "training",
    track: int | str = 1,
    num_trials: int = DEFAULT_TRIALS,
    on_event: Callable[[Event], None] | None = None,
    poses: list[list[CarPose]] | None = None,
) -> dict:
    """Run ``num_trials`` greedy trials of the session's car and record them; returns the track's metrics
    object: the original's keys (``num_trials``, ``record``, ``mean_score``, ``laps_completed``,
    ``mean_progress``, ``total_elapsed_time``, ``evaluated_at``), then :func:`lap_metrics`' and ``car``
    (the session's action space).

    With ``poses``, every trial's steps are collected there too (see :func:`greedy_trials`).
    """
    if not 1 <= int(num_trials) <= 100:
        raise ValueError(f"num_trials must be 1..100, not {num_trials!r}")
    emit = on_event or (lambda event: None)
    setup = load_setup(store, session_id)
    network = load_best_model(store, session_id, setup)
    reward = compile_reward_source(setup.reward_source)
    options = setup.env.car()
    env = gym.make(ENV_ID, track=track, mode=mode, reward_function=reward, **options).unwrapped
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
        **lap_metrics(results, env.track),
        "car": options["action_space"],
        "algorithm": store.trained_algorithm(session_id),
    }
    store.record_evaluation(session_id, mode, str(track), metrics)
    return metrics
