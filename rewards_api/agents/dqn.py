"""Deep Q-learning, readable top to bottom: the Q-network, the replay buffer and the update.

The network is exactly the user's ``model_configuration``: fully-connected layers ``[[in, out], ...]``
with ReLU between them: 5 radar inputs and 3 action values for the classic car, the radars and the
speed in and one value per action out for the racing car. Each input is divided by its largest value
(``observation_high``: ``OBSERVATION_SCALE`` px for a radar, 4 m/s for the speed) inside ``forward``,
as a buffer that is not saved, so a saved ``state_dict`` holds just the layers and takes raw readings.

The update is DQN with a target network (hard-copied every ``target_update_every`` updates),
Double-DQN targets (the online network picks the next action, the target network values it), gradient
clipping, and the user's loss and optimizer. ``DQNSettings`` says how often it updates. Rewards are
divided by a running estimate of the return's spread (``normalize.py``) as a batch is drawn, so that a
reward function's scale does not change how it learns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .normalize import RewardNormalizer

OBSERVATION_SCALE = 200.0
"""Radar range in pixels: observations are divided by it before the first layer."""

LOSSES = ("mse", "rmse", "mae", "huber")
OPTIMIZERS = ("adam", "rmsprop", "adagrad")


class QNetwork(nn.Module):
    """Fully-connected network: ``layers`` is ``[(in, out), ...]``, ReLU between layers. DQN's Q-network,
    and PPO's actor and critic (see ``ppo.py``).

    ``observation_high``: the largest value of each input (default ``OBSERVATION_SCALE`` for all).
    ``action_low``/``action_high``: a continuous car's action bounds (PPO's actor): its outputs are then
    the action's mean in [-1, 1], mapped linearly onto the bounds (:meth:`to_actions`); without them
    the outputs are one value per action and the greedy action is the largest.
    """

    def __init__(self, layers: list[tuple[int, int]], observation_high: list[float] | None = None,
                 action_low: list[float] | None = None, action_high: list[float] | None = None) -> None:
        super().__init__()
        high = observation_high or [OBSERVATION_SCALE] * layers[0][0]
        if len(high) != layers[0][0]:
            raise ValueError(f"the first layer takes {layers[0][0]} inputs; the observation has {len(high)}")
        self.register_buffer("scale", 1.0 / torch.tensor(high, dtype=torch.float32), persistent=False)
        self.continuous = action_low is not None and action_high is not None
        if self.continuous:
            low = torch.tensor(action_low, dtype=torch.float32)
            self.register_buffer("action_middle", (torch.tensor(action_high) + low) / 2, persistent=False)
            self.register_buffer("action_half", (torch.tensor(action_high) - low) / 2, persistent=False)
        modules: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(layers):
            if i:
                modules.append(nn.ReLU())
            modules.append(nn.Linear(fan_in, fan_out))
        self.layers = nn.Sequential(*modules)
        self.shape = [tuple(layer) for layer in layers]

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.layers(observations * self.scale)

    def to_actions(self, outputs: torch.Tensor) -> np.ndarray:
        """A continuous car's ``[steering, speed]`` for outputs in [-1, 1] (clipped into it first)."""
        return (self.action_middle + outputs.clamp(-1.0, 1.0) * self.action_half).numpy()

    @torch.no_grad()
    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """The greedy action of each observation of a batch: the largest output's index (the best Q-value,
        or the most likely action of a categorical policy), or a continuous policy's mean action."""
        outputs = self(torch.from_numpy(np.asarray(observations, dtype=np.float32)))
        return self.to_actions(outputs) if self.continuous else outputs.argmax(dim=1).numpy()

    def greedy_action(self, observation: np.ndarray) -> int | np.ndarray:
        """:meth:`greedy` of one observation, as a single car's env takes it (an index or a row)."""
        action = self.greedy(np.asarray(observation)[None])[0]
        return action if self.continuous else int(action)


def loss_function(name: str, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The TD loss by its ``loss_fn`` name: mse, rmse, mae or huber."""
    if name == "mse":
        return F.mse_loss(predicted, target)
    if name == "rmse":
        return torch.sqrt(F.mse_loss(predicted, target) + 1e-8)
    if name == "mae":
        return F.l1_loss(predicted, target)
    if name == "huber":
        return F.smooth_l1_loss(predicted, target)
    raise ValueError(f"loss_fn must be one of {', '.join(LOSSES)}, not {name!r}")


def make_optimizer(name: str, parameters: list[nn.Parameter], learning_rate: float) -> torch.optim.Optimizer:
    """The optimizer by its ``optimizer`` name: adam, rmsprop or adagrad."""
    # Fused kernels: a tiny network's step is all per-tensor overhead, which they remove.
    if name == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=learning_rate, foreach=True)
    if name == "adagrad":
        return torch.optim.Adagrad(parameters, lr=learning_rate, fused=True)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {name!r}")


class ReplayBuffer:
    """A ring buffer of transitions in one NumPy array; ``sample`` draws uniformly with replacement.

    Each row is ``observation (k) | next observation (k) | action | reward | done``, so a batch is a
    single gather (``done`` is 1 where the value does not bootstrap: a crash).
    """

    def __init__(self, capacity: int, observation_size: int = 5) -> None:
        self.capacity = capacity
        self.observation_size = observation_size
        self.rows = np.zeros((capacity, 2 * observation_size + 3), dtype=np.float32)
        self.size = 0
        self._next = 0

    def add(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_observations: np.ndarray, dones: np.ndarray) -> None:
        """Store a batch of transitions (one per car)."""
        n, k = len(actions), self.observation_size
        index = (self._next + np.arange(n)) % self.capacity
        rows = np.empty((n, self.rows.shape[1]), dtype=np.float32)
        rows[:, :k] = observations
        rows[:, k : 2 * k] = next_observations
        rows[:, 2 * k] = actions
        rows[:, 2 * k + 1] = rewards
        rows[:, 2 * k + 2] = dones
        self.rows[index] = rows
        self._next = int((self._next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """``(observations, actions, rewards, next_observations, dones)`` of a random batch."""
        k = self.observation_size
        batch = torch.from_numpy(self.rows[rng.integers(0, self.size, size=batch_size)])
        observations, next_observations = batch[:, :k], batch[:, k : 2 * k]
        actions, rewards, dones = batch[:, 2 * k].long(), batch[:, 2 * k + 1], batch[:, 2 * k + 2]
        return observations, actions, rewards, next_observations, dones


@dataclass(frozen=True)
class DQNSettings:
    """The learning engine's own settings (the user's parameters are in ``AgentConfig``)."""

    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 256  # transitions collected before the first update
    # Gradient updates: each transition is replayed ``replay_ratio`` times on average, and every finished
    # episode earns at least ``updates_per_episode`` more. Early episodes are a few steps long (the car
    # crashes at once), so the second rule is what lets a short episode budget (the original UI's 700)
    # learn; once episodes are long, the first keeps the cars fast.
    replay_ratio: float = 1.0
    updates_per_episode: float = 4.0
    target_update_every: int = 200  # updates between copies into the target network
    max_grad_norm: float = 10.0
    epsilon_floor: float = 0.01
    epsilon_decay_fraction: float = 0.5  # share of num_episodes over which epsilon decays to its floor


class DQNAgent:
    """The online and target Q-networks, their optimizer, and acting and learning."""

    def __init__(self, layers: list[tuple[int, int]], learning_rate: float, loss_fn: str, optimizer: str,
                 gamma: float, settings: DQNSettings | None = None, seed: int = 0,
                 observation_high: list[float] | None = None) -> None:
        self.settings = settings or DQNSettings()
        self.gamma = gamma
        self.loss_fn = loss_fn
        self.num_actions = layers[-1][1]
        torch.manual_seed(seed)
        self.q = QNetwork(layers, observation_high)
        self.target = QNetwork(layers, observation_high)
        self.target.load_state_dict(self.q.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = make_optimizer(optimizer, list(self.q.parameters()), learning_rate)
        self.updates = 0

    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """The highest-valued action for each observation (a batch of radar readings)."""
        return self.q.greedy(observations)

    def act(self, observations: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy actions: each car explores at random with probability ``epsilon``."""
        actions = self.greedy(observations)
        explore = rng.random(len(actions)) < epsilon
        if explore.any():
            actions[explore] = rng.integers(0, self.num_actions, size=int(explore.sum()))
        return actions

    def update(self, buffer: ReplayBuffer, rng: np.random.Generator,
               normalizer: RewardNormalizer | None = None) -> float:
        """One gradient step on a sampled batch; returns the loss. The buffer holds the rewards as the
        reward function gave them; ``normalizer`` scales them by its current estimate as they are drawn
        (as SB3 does with VecNormalize), so every update sees one scale, however old the transition."""
        obs, actions, rewards, next_obs, dones = buffer.sample(self.settings.batch_size, rng)
        if normalizer is not None:
            rewards = torch.from_numpy(normalizer.normalize(rewards.numpy()))
        n = len(actions)
        # One pass of the online network over both halves; only the first half carries gradients.
        values = self.q(torch.cat([obs, next_obs]))
        with torch.no_grad():
            next_actions = values[n:].argmax(dim=1, keepdim=True)
            next_values = self.target(next_obs).gather(1, next_actions).squeeze(1)
            targets = rewards + self.gamma * (1.0 - dones) * next_values
        predicted = values[:n].gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = loss_function(self.loss_fn, predicted, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), self.settings.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.settings.target_update_every == 0:
            self.target.load_state_dict(self.q.state_dict())
        return loss.item()

    def state(self) -> dict:
        """Everything needed to continue learning: both networks and the optimizer."""
        return {"q": self.q.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state(self, state: dict) -> None:
        self.q.load_state_dict(state["q"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])


def epsilon_at(episode: int, start: float, num_episodes: int, settings: DQNSettings) -> float:
    """Exploration rate: ``start`` at episode 0, falling linearly to ``settings.epsilon_floor`` at
    ``epsilon_decay_fraction`` of ``num_episodes``, then staying there (never above ``start``)."""
    floor = min(settings.epsilon_floor, start)
    span = max(1.0, settings.epsilon_decay_fraction * num_episodes)
    return max(floor, start - (start - floor) * episode / span)


def load_q_network(layers: list[tuple[int, int]], path: str, observation_high: list[float] | None = None,
                   action_bounds: tuple[list[float], list[float]] | None = None) -> QNetwork:
    """A network built from ``layers`` with the weights saved at ``path`` (a ``state_dict``): DQN's
    Q-network, or PPO's actor (``action_bounds``: a continuous car's ``(low, high)``)."""
    network = QNetwork(layers, observation_high, *(action_bounds or (None, None)))
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    network.eval()
    return network
