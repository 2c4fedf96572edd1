"""Training a session's agent: many cars at once, DQN or PPO updates, events, and everything persisted.

A run reads the session's parameters from the store, drives ``num_cars`` cars (split over the
training tracks; by default 64 for DQN, 256 for PPO) through the native vector env, and learns from every
car's transitions with the session's ``learning_algorithm`` (``rewards_api.agents.dqn`` or ``.ppo``),
its rewards divided by the return's running scale unless ``normalize_rewards`` is off
(``rewards_api.agents.normalize``). It keeps the session's files current as it goes:

- ``training_metrics.json`` and ``model_history.json`` ``last_trained`` after each step in which
  episodes finished, at most every ``metrics_interval`` seconds, or 20 times what the last write took
  once the histories are long (so a crash loses at most that much, and writing never costs more than
  ~5 % of the run), and always when the run ends, stops or fails;
- ``model.pth`` (the network of this run's best episode so far, by score: see below) on the same cadence;
- the resume checkpoint (both networks, the optimizer, the counters) every ``checkpoint_interval``
  seconds and when the run ends: a later run continues from it;
- ``model_history.json`` ``runs``: one entry per run, appended when it starts and brought up to date at
  each of the writes above (see :meth:`Trainer.run_entry`), so a crash keeps it.

A run starts in one of three ways (its entry's ``"start"``):

- ``"resumed"``: the checkpoint's run was interrupted (stopped, failed, killed, or cut short by
  ``max_seconds``) before its episodes were done, and this run trains on the same tracks: it finishes
  those episodes exactly as that run would have, exploration schedule and record included. A stop is
  treated as an interruption because a run cannot tell a user's stop from a server shutdown or a
  Ctrl-C; to end such a run early, train with ``fresh``, or on another track.
- ``"warm"``: the session has a model from a finished run (or an interrupted one, on other tracks now):
  its weights and optimizer carry on, the target becomes ``num_episodes`` more episodes, and
  exploration starts again at :data:`WARM_START_EPSILON_SHARE` of the session's ``epsilon``, decaying
  over those episodes as in a fresh run. The track may change between runs (same network shape).
- ``"fresh"``: no usable checkpoint (none yet, the network's shape, the car or the learning algorithm
  changed, or ``fresh`` was asked): new weights; empty metrics, ``runs`` and ``last_trained``; the previous
  model.pth and checkpoint go. A change of algorithm says so in ``TrainingStarted.message``.

For the racing car (a ``discrete`` or ``continuous`` session), ``model.pth`` is instead the network
whose last ``num_cars`` episodes (of this run) had the best mean score: with speed to choose, one lucky
episode says little about a network, and a sustained mean says much more. ``record`` stays the best
episode's score.

The record that decides what ``model.pth`` holds restarts with each fresh or warm run (a resumed run
keeps its own), so ``model.pth`` is always the best episode's network of the latest run, even one on a
new track where the previous run's record cannot be beaten; ``last_trained.record`` is that score.

Episodes are counted over all cars together, as the original counted one car's games. A completed lap
ends an episode, but for learning it is not a dead end: its value is bootstrapped as if the car drove
on, so the agent is never taught to fear the finish line.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch

from ..agents.dqn import DQNAgent, DQNSettings, QNetwork, ReplayBuffer, epsilon_at
from ..agents.normalize import RewardNormalizer
from ..agents.ppo import PPOAgent, PPOSettings
from ..envs import ENV_ID
from ..envs.render import encode_jpeg
from ..envs.reward import RewardFunctionError, compile_reward_source
from ..params import (
    AgentConfig,
    AgentParams,
    EnvParams,
    TrainingParams,
    check_trainable,
    session_agent_params,
)
from ..scores import clamp
from ..store import SessionStore, atomic_write_bytes
from .events import (
    EpisodeFinished,
    Event,
    FrameReady,
    TrainingFailed,
    TrainingFinished,
    TrainingStarted,
    score_value,
)

log = logging.getLogger(__name__)

WARM_START_EPSILON_SHARE = 0.25
"""A warm start's exploration starts at this share of the session's ``epsilon`` (0.2 gives 0.05): the
model already drives, so it needs less exploring than a new one, but some, for a new track."""
MAX_RUNS = 1000
"""``model_history.json`` keeps the entries of the last this many runs."""

CARS = {"dqn": 64, "ppo": 256}
"""Cars driving at once, unless a run says otherwise: PPO learns from batches of thousands of steps at a
time, which many cars fill at a lower cost per step; DQN learns a little after every step."""

EventHandler = Callable[[Event], None]
StartKind = Literal["fresh", "warm", "resumed"]
"""How a run began (see the module docstring)."""


@dataclass(frozen=True)
class TrainingOptions:
    """How a run trains (the user's parameters come from the session)."""

    num_cars: int | None = None  # None: CARS[the session's learning_algorithm]
    tracks: tuple[int | str, ...] | None = None  # default: the session's environment_world
    seed: int = 0
    random_start: bool = True  # cars start anywhere on the track: they see all of it early
    fresh: bool = False  # ignore the resume checkpoint and start a new model
    max_seconds: float | None = None
    metrics_interval: float = 0.25
    checkpoint_interval: float = 10.0
    torch_threads: int = 1  # tiny networks are fastest on one thread
    settings: DQNSettings = field(default_factory=DQNSettings)


class TrainingError(RuntimeError):
    """A run failed; what it had learned is saved. ``event`` is the TrainingFailed it emitted."""

    def __init__(self, event: TrainingFailed) -> None:
        super().__init__(event.message)
        self.event = event


@dataclass
class SessionSetup:
    """A session's parameters, checked and normalised for training."""

    env: EnvParams
    agent: AgentParams
    config: AgentConfig
    reward_source: str
    algorithm: str = "dqn"  # training_params.json learning_algorithm


def observation_high(env: EnvParams) -> list[float]:
    """The largest value of each of the session's observations (what the Q-network divides by)."""
    from ..envs.racing import car_spec

    return car_spec(**env.car()).observation_space().high.tolist()


def action_bounds(env: EnvParams) -> tuple[list[float], list[float]] | None:
    """The continuous car's ``(low, high)`` actions (steering, speed), what its policy's outputs map onto;
    None for the cars with a list of actions."""
    from gymnasium import spaces

    from ..envs.racing import car_spec

    space = car_spec(**env.car()).action_space_of()
    return (space.low.tolist(), space.high.tolist()) if isinstance(space, spaces.Box) else None


def load_setup(store: SessionStore, session_id: str) -> SessionSetup:
    """Read and validate a session's parameters (defaults for those not written yet; the car's default
    network). ParameterError for a network that does not fit the car (naming the inputs and outputs it
    needs) and for a car the learning algorithm cannot train (the continuous car with DQN)."""
    stored = store.all_params(session_id)
    env = EnvParams(**stored["env_params"])
    agent = session_agent_params(env, stored["agent_params"])
    training = TrainingParams(**stored["training_params"])
    check_trainable(env, training.learning_algorithm)
    return SessionSetup(env=env, agent=agent, config=agent.config(), reward_source=training.reward_function,
                        algorithm=training.learning_algorithm)



class Trainer:
    """One training run of one session. Call :meth:`run`; :meth:`stop` and :meth:`request_frame`
    may be called from other threads."""

    def __init__(self, store: SessionStore, session_id: str, options: TrainingOptions | None = None) -> None:
        self.store = store
        self.session_id = session_id
        self.options = options or TrainingOptions()
        self.paths = store.paths(session_id)
        self.setup = load_setup(store, session_id)
        self.car = self.setup.env.car()  # the env options of the session's car
        self.num_cars = self.options.num_cars or CARS[self.setup.algorithm]
        self._stop = threading.Event()
        self._frame_wanted = threading.Event()

    def stop(self) -> None:
        """Ask the run to stop after the current step; it saves what it learned."""
        self._stop.set()

    def request_frame(self) -> None:
        """Ask for a :class:`FrameReady` event showing the first car, after the next step."""
        self._frame_wanted.set()

    # ----- the run ---------------------------------------------------------------------------------
    def run(self, on_event: EventHandler | None = None,
            on_saving: Callable[[], None] | None = None) -> TrainingFinished:
        """Train until the episodes are done, :meth:`stop` is called, or ``max_seconds`` pass.

        Raises :class:`TrainingError` (after saving and emitting :class:`TrainingFailed`) when the
        reward function fails. ``on_saving`` is called once the reward code has run for the last time,
        before the final save (a worker tells its manager it is saving, not stuck in user code).
        """
        emit = on_event or (lambda event: None)
        saving = on_saving or (lambda: None)
        torch.set_num_threads(self.options.torch_threads)
        reward = compile_reward_source(self.setup.reward_source)
        self._start(reward)
        emit(TrainingStarted(
            episode=self.episodes, episodes=self.target_episodes, steps=self.steps,
            record=score_value(self.record) if np.isfinite(self.record) else None,
            layers=[list(layer) for layer in self.setup.config.layers],
            algorithm=self.setup.algorithm, start=self.start_kind, message=self.start_message,
        ))
        try:
            while self.episodes < self.target_episodes and not self._stop.is_set():
                if self.options.max_seconds is not None and self._elapsed() >= self.options.max_seconds:
                    break
                self._step(emit)
        except RewardFunctionError as exc:
            saving()
            self._persist(force=True, final=True)
            self._save_checkpoint()
            failed = TrainingFailed(message=str(exc), episodes=self.episodes, steps=self.steps)
            emit(failed)
            raise TrainingError(failed) from exc
        saving()
        self._persist(force=True, final=True)
        self._save_checkpoint()
        record = score_value(self.record) if np.isfinite(self.record) else None  # None: no episode yet
        finished = TrainingFinished(episodes=self.episodes, record=record, steps=self.steps,
                                    elapsed=self._elapsed(), stopped=self.episodes < self.target_episodes)
        emit(finished)
        return finished

    def _start(self, reward: Any) -> None:
        """Build the cars and the agent, then resume, warm start or start fresh (see the module doc)."""
        options, config = self.options, self.setup.config
        tracks = options.tracks or (self.setup.env.environment_world,)
        mode = "training"
        self.envs = []
        for i, track in enumerate(tracks):
            cars = self.num_cars // len(tracks) + (1 if i < self.num_cars % len(tracks) else 0)
            env = gym.make_vec(ENV_ID, num_envs=max(cars, 1), vectorization_mode="vector_entry_point",
                               track=track, mode=mode, reward_function=reward,
                               random_start=options.random_start, autoreset_mode="SameStep",
                               **self.car)
            self.envs.append(env)
        self.track_names = [env.track.name for env in self.envs]
        counts = np.cumsum([0, *(env.num_envs for env in self.envs)])
        self.car_slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(counts)]
        high = self.envs[0].single_observation_space.high.tolist()
        total = int(counts[-1])  # cars, over all tracks
        self.agent: DQNAgent | PPOAgent
        if self.setup.algorithm == "ppo":
            settings = PPOSettings(**dataclasses.asdict(config.ppo))
            self.agent = PPOAgent(config.layers, config.learning_rate, config.optimizer, config.gamma,
                                  config.loss_fn, total, settings, seed=options.seed, observation_high=high,
                                  action_bounds=action_bounds(self.setup.env))
        else:
            self.agent = DQNAgent(config.layers, config.learning_rate, config.loss_fn, config.optimizer,
                                  config.gamma, options.settings, seed=options.seed, observation_high=high)
            self.buffer = ReplayBuffer(options.settings.buffer_size, observation_size=len(high))
        self.normalizer = RewardNormalizer(total, config.gamma) if config.normalize_rewards else None
        self.start_message: str | None = None  # why a new model started, when the user should know
        self.rng = np.random.default_rng(options.seed)
        self.episodes = self.steps = 0
        self.record = -np.inf
        self.best_mean = -np.inf  # racing cars: the best mean of a window of this run's episodes
        self.scores: list[float | int] = []
        self.mean_scores: list[float] = []
        self.target_episodes = config.num_episodes
        # The exploration schedule: epsilon_start at episode schedule_start, decaying to the target.
        self.schedule_start, self.epsilon_start = 0, config.epsilon
        start = None if options.fresh else self._load_checkpoint()
        self.start_kind: StartKind = start or "fresh"
        if start is None:
            self._reset_history()
        log.info("session %s: %s start at episode %d of %d on %s", self.session_id, self.start_kind,
                 self.episodes, self.target_episodes, ", ".join(self.track_names))
        self._first_episode, self._first_step = self.episodes, self.steps  # where this run's entry begins
        self._started_at, self._started = datetime.now(), time.perf_counter()
        self._begin_run_entry()
        self.observations = [env.reset(seed=options.seed + 1000 * i)[0] for i, env in enumerate(self.envs)]
        self._score_sum = float(sum(self.scores))
        self._best_state: dict | None = None
        self._dirty = False
        self._update_debt = 0.0  # gradient updates owed (fractional), see DQNSettings
        self._persist_cost = 0.0  # seconds the last write of the histories took
        self._last_persist = self._last_checkpoint = time.perf_counter()

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started

    @property
    def policy(self) -> QNetwork:
        """The network that drives: DQN's Q-network or PPO's actor (what model.pth and live views hold)."""
        return self.agent.actor if isinstance(self.agent, PPOAgent) else self.agent.q

    def _step(self, emit: EventHandler) -> None:
        if isinstance(self.agent, PPOAgent):
            finished = self._step_ppo(emit, self.agent)
        else:
            finished = self._step_dqn(emit, self.agent)
        if finished:
            self._persist()
        if time.perf_counter() - self._last_checkpoint >= self.options.checkpoint_interval:
            self._persist(force=True)  # the metrics on disk must cover every episode the checkpoint counts
            self._save_checkpoint()
        if self._frame_wanted.is_set():
            self._frame_wanted.clear()
            emit(FrameReady(jpeg=encode_jpeg(self.envs[0].render_car_frame(0)), episode=self.episodes,
                            score=float(self.envs[0].core.score[0])))

    def _episodes_ended(self, emit: EventHandler, info: dict, done: np.ndarray, epsilon: float | None,
                        index: int) -> None:
        for car in np.flatnonzero(done):
            if self.episodes >= self.target_episodes:  # episodes past the target (other tracks' cars too)
                break
            self._episode_finished(emit, info, int(car), epsilon, self.track_names[index])

    def _step_dqn(self, emit: EventHandler, agent: DQNAgent) -> int:
        """Every car drives one epsilon-greedy step into the replay buffer; then the updates it earns.
        Returns the episodes that finished."""
        settings = self.options.settings
        epsilon = epsilon_at(self.episodes - self.schedule_start, self.epsilon_start,
                             self.target_episodes - self.schedule_start, settings)
        episodes_before, steps_before = self.episodes, self.steps
        for index, env in enumerate(self.envs):
            observations = self.observations[index]
            actions = agent.act(observations, epsilon, self.rng)
            next_observations, rewards, terminated, truncated, info = env.step(actions)
            done = terminated | truncated
            if self.normalizer is not None:
                self.normalizer.observe(rewards, done, self.car_slices[index])
            stored_next = next_observations
            if done.any():
                stored_next = next_observations.copy()
                stored_next[done] = info["final_obs"][done]
            dead_end = terminated & ~info["lap_complete"]
            self.buffer.add(observations, actions, rewards, stored_next, dead_end.astype(np.float32))
            self.observations[index] = next_observations
            self.steps += len(actions)
            if done.any():
                self._episodes_ended(emit, info, done, epsilon, index)
        finished, steps_taken = self.episodes - episodes_before, self.steps - steps_before
        if self.buffer.size >= settings.learning_starts:
            self._update_debt += (steps_taken * settings.replay_ratio / settings.batch_size
                                  + finished * settings.updates_per_episode)
            while self._update_debt >= 1.0:
                agent.update(self.buffer, self.rng, self.normalizer)
                self._update_debt -= 1.0
        return finished

    def _step_ppo(self, emit: EventHandler, agent: PPOAgent) -> int:
        """Every car drives one step sampled from the policy into the rollout; a full rollout is learned
        from. Returns the episodes that finished."""
        episodes_before = self.episodes
        actions = agent.act(np.concatenate(self.observations), self.rng)
        learned = np.zeros(len(actions), dtype=np.float32)
        ends = np.zeros(len(actions), dtype=bool)
        for index, env in enumerate(self.envs):
            cars = self.car_slices[index]
            next_observations, rewards, terminated, truncated, info = env.step(actions[cars])
            done = terminated | truncated
            if self.normalizer is not None:
                self.normalizer.observe(rewards, done, cars)
                rewards = self.normalizer.normalize(rewards)
            rewards = np.asarray(rewards, dtype=np.float32)
            # A lap completed or the step limit: the episode ends, but its value goes on (bootstrapped).
            carries_on = done & ~(terminated & ~info["lap_complete"])
            if carries_on.any():
                rewards = rewards.copy()
                rewards[carries_on] += agent.gamma * agent.value(info["final_obs"][carries_on])
            learned[cars], ends[cars] = rewards, done
            self.observations[index] = next_observations
            self.steps += env.num_envs
            if done.any():
                self._episodes_ended(emit, info, done, None, index)
        if agent.record(learned, ends):
            agent.update(np.concatenate(self.observations), self.rng)
        return self.episodes - episodes_before

    def _episode_finished(self, emit: EventHandler, info: dict, car: int, epsilon: float | None,
                          track: str) -> None:
        final = info["final_info"]
        score = score_value(final["score"][car])
        self.episodes += 1
        self.scores.append(score)
        self._score_sum += score
        mean = round(clamp(self._score_sum / len(self.scores)), 4)  # the sum may overflow to inf
        self.mean_scores.append(mean)
        if score > self.record:
            self.record = score
            if self.car["action_space"] == "classic":
                self._best_state = {k: v.clone() for k, v in self.policy.state_dict().items()}
        if self.car["action_space"] != "classic":
            self._keep_if_best_mean()
        self._dirty = True
        emit(EpisodeFinished(
            episode=self.episodes, score=score, record=score_value(self.record), mean_score=mean,
            epsilon=None if epsilon is None else round(epsilon, 4), steps=self.steps,
            elapsed=round(self._elapsed(), 3),
            lap_complete=bool(final["lap_complete"][car]), progress=round(float(final["progress"][car]), 2),
            track=track,
        ))

    def _keep_if_best_mean(self) -> None:
        """Racing cars: keep the network when the mean of this run's last ``num_cars`` episodes is the
        best so far (once the run has had that many)."""
        window = max(self.num_cars, 1)
        if self.episodes - self._first_episode < window:
            return
        mean = clamp(sum(self.scores[-window:]) / window)
        if mean > self.best_mean:
            self.best_mean = mean
            self._best_state = {k: v.clone() for k, v in self.policy.state_dict().items()}

    # ----- persistence -----------------------------------------------------------------------------
    def run_entry(self) -> dict[str, Any]:
        """This run's entry in ``model_history.json`` ``runs``, as of now: when it started (``date``
        YYYY-MM-DD, ``time`` HH:MM:SS), how (``start``: fresh, warm or resumed), on which ``track`` (the
        tracks' names, comma-separated), and what it did: ``episodes`` and env ``steps`` (all cars) in
        this run, its best score (``record``, null before its first episode), ``duration`` (seconds) and
        ``algorithm`` (dqn or ppo)."""
        scores = self.scores[self._first_episode:]
        return {
            "date": self._started_at.strftime("%Y-%m-%d"), "time": self._started_at.strftime("%H:%M:%S"),
            "start": self.start_kind, "track": ",".join(self.track_names),
            "episodes": self.episodes - self._first_episode,
            "record": score_value(max(scores)) if scores else None,
            "steps": self.steps - self._first_step, "duration": round(self._elapsed(), 1),
            "algorithm": self.setup.algorithm,
        }

    def _begin_run_entry(self) -> None:
        """Append this run's entry to ``runs`` (a fresh start begins a new list, with no last_trained)."""

        def begin(history: dict) -> None:
            history.setdefault("last_created", {})
            runs = history.get("runs")
            if self.start_kind == "fresh" or not isinstance(runs, list):
                runs = []
            if self.start_kind == "fresh":
                history["last_trained"] = {}
            history["runs"] = [*runs, self.run_entry()][-MAX_RUNS:]

        self.store.update(self.session_id, "model_history", begin)

    def _update_run_entry(self, history: dict) -> None:
        """Replace this run's entry (the last one, unless a new model began a new list meanwhile)."""
        runs = history.get("runs")
        entry = self.run_entry()
        if isinstance(runs, list) and runs and isinstance(runs[-1], dict) and all(
                runs[-1].get(key) == entry[key] for key in ("date", "time", "start")):
            runs[-1] = entry

    def _persist(self, force: bool = False, final: bool = False) -> None:
        """Write metrics, model history and the best model, at most every ``metrics_interval``;
        ``final``: the run ends, its entry in ``runs`` is written even if no episode finished."""
        now = time.perf_counter()
        # The histories grow with every episode: space the writes by 20x what the last one took, so
        # that they never cost more than ~5 % of the run, however long it gets.
        interval = max(self.options.metrics_interval, 20 * self._persist_cost)
        if not (self._dirty or final) or (not force and now - self._last_persist < interval):
            return
        self._last_persist = now
        dirty, self._dirty = self._dirty, False
        if self._best_state is not None:
            atomic_write_bytes(self.paths.model, _tensor_bytes(self._best_state))
            self._best_state = None
        if dirty:
            metrics = {"plot_scores": self.scores, "plot_mean_scores": self.mean_scores}
            self.store.write(self.session_id, "training_metrics", metrics)
        stamp = datetime.now()

        def trained(history: dict) -> None:
            history.setdefault("last_created", {})
            if dirty:
                history["last_trained"] = {
                    "date": stamp.strftime("%Y-%m-%d"), "time": stamp.strftime("%H:%M:%S.%f"),
                    "record": score_value(self.record), "scores": self.scores,
                    "mean_scores": self.mean_scores,
                }
                if self.car["action_space"] != "classic":  # which car model.pth drives (classic: absent)
                    history["last_trained"]["car"] = self.car
                if self.setup.algorithm != "dqn":  # which algorithm trained it (DQN: absent, the original's)
                    history["last_trained"]["algorithm"] = self.setup.algorithm
            self._update_run_entry(history)

        self.store.update(self.session_id, "model_history", trained)
        self._persist_cost = time.perf_counter() - now

    def _save_checkpoint(self) -> None:
        self._last_checkpoint = time.perf_counter()
        state = {
            "agent": self.agent.state(), "layers": self.setup.config.layers, "episodes": self.episodes,
            "target_episodes": self.target_episodes, "steps": self.steps,
            "record": self.record if np.isfinite(self.record) else None, "rng": self.rng.bit_generator.state,
            "tracks": self.track_names, "schedule_start": self.schedule_start,
            "epsilon_start": self.epsilon_start, "car": self.car,
            "best_mean": self.best_mean if np.isfinite(self.best_mean) else None,
            "algorithm": self.setup.algorithm,
            "normalizer": self.normalizer.state() if self.normalizer is not None else None,
        }
        self.paths.checkpoints.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.paths.resume_checkpoint, _tensor_bytes(state))

    def _load_checkpoint(self) -> StartKind | None:
        """Continue from the resume checkpoint if it fits this model: ``"resumed"`` or ``"warm"`` (see the
        module docstring), None when there is none or the network's shape changed."""
        path = self.paths.resume_checkpoint
        if not path.exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
        layers = [tuple(layer) for layer in self.setup.config.layers]
        if [tuple(layer) for layer in state["layers"]] != layers:
            log.info("session %s: the model changed since the checkpoint; a new one starts", self.session_id)
            return None
        if state.get("car", {"action_space": "classic"}) != self.car:  # absent: a classic car's checkpoint
            log.info("session %s: the car changed since the checkpoint; a new model starts", self.session_id)
            return None
        was = state.get("algorithm", "dqn")  # absent: a checkpoint from before PPO
        if was != self.setup.algorithm:
            self.start_message = (f"the session's learning_algorithm changed from {was} to "
                                  f"{self.setup.algorithm}: a new {self.setup.algorithm} model starts (the "
                                  f"{was} model, its metrics and its checkpoint are replaced)")
            log.info("session %s: %s", self.session_id, self.start_message)
            return None
        config = self.setup.config
        self.agent.load_state(state["agent"])
        saved_scale = state.get("normalizer")
        if self.normalizer is not None and saved_scale is not None:
            self.normalizer.load_state(saved_scale)
        self.episodes, self.steps = int(state["episodes"]), int(state["steps"])
        self.rng.bit_generator.state = state["rng"]
        metrics = self.store.read(self.session_id, "training_metrics")
        self.scores = list(metrics.get("plot_scores", []))[: self.episodes]
        self.mean_scores = list(metrics.get("plot_mean_scores", []))[: self.episodes]
        target = int(state["target_episodes"])
        same_tracks = state.get("tracks", self.track_names) == self.track_names  # absent: older checkpoint
        if self.episodes < target and same_tracks:
            self.target_episodes = target
            self.record = state["record"] if state["record"] is not None else -np.inf
            best_mean = state.get("best_mean")
            self.best_mean = best_mean if best_mean is not None else -np.inf
            self.schedule_start = int(state.get("schedule_start", 0))
            self.epsilon_start = float(state.get("epsilon_start", config.epsilon))
            return "resumed"
        self.target_episodes = self.episodes + config.num_episodes
        self.schedule_start, self.epsilon_start = self.episodes, WARM_START_EPSILON_SHARE * config.epsilon
        return "warm"

    def _reset_history(self) -> None:
        """A new model starts with an empty history; the previous model's files go with it (the
        checkpoint too, so that a crash before the first new one cannot bring the old weights back)."""
        self.store.write(self.session_id, "training_metrics", {"plot_scores": [], "plot_mean_scores": []})
        self.paths.model.unlink(missing_ok=True)
        self.paths.resume_checkpoint.unlink(missing_ok=True)


def _tensor_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def train(store: SessionStore, session_id: str, options: TrainingOptions | None = None,
          on_event: EventHandler | None = None) -> TrainingFinished:
    """Train a session (see :class:`Trainer`)."""
    return Trainer(store, session_id, options).run(on_event)
