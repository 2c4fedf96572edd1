"""Proximal Policy Optimization, readable top to bottom: the actor and critic, the rollout, the update.

PPO with the clipped objective and generalized advantage estimation (Schulman et al. 2017; the structure
follows CleanRL's single-file ``ppo.py``), on many cars at once:

1. Every car drives ``rollout_length`` steps with the current policy, sampling its actions; each step
   keeps the observation, the action, its log-probability and the critic's value of the observation.
2. Advantages by GAE(``gamma``, ``gae_lambda``): a crash ends the return; a completed lap or the step
   limit does not, its value is bootstrapped from the critic (the trainer adds ``gamma * V(final
   observation)`` to that step's reward), so the car is never taught to fear the finish line.
3. ``num_epochs`` passes over the rollout in shuffled minibatches of ``batch_size``: the clipped policy
   loss (``clip_range``), minus ``beta_entropy`` times the policy's entropy, plus half the value loss
   (the session's ``loss_fn`` between the critic and the returns), the gradient clipped to a norm of
   0.5, one step of the session's optimizer at its ``learning_rate``.

The networks come from the session's ``model_configuration`` ``[[in, h1], [h1, h2], ..., [hk, out]]``:

- the **actor** is exactly those layers (ReLU between them, the inputs divided by their largest value
  as in DQN's Q-network): for the ``classic`` and ``discrete`` cars ``out`` is one logit per action of
  a categorical policy; for the ``continuous`` car ``out`` is 2, the mean of a Gaussian over steering and
  speed, each in [-1, 1] mapped linearly onto the car's bounds (-30..30 degrees, the ``speed_range``),
  with a learned standard deviation per output that is not part of the network. A sample is clipped
  into the bounds to drive (its log-probability is the unclipped sample's, as SB3 does);
- the **critic** has the same hidden layers and one output, the value of the observation.

``model.pth`` is the actor's ``state_dict``, the same keys as a Q-network of the same layers: the greedy
driver takes the most likely action (categorical) or the mean (continuous). Rewards reach the update
divided by a running estimate of the return's spread (``normalize.py``). Sampling draws from the
trainer's NumPy generator (saved with the checkpoint), so a run is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .dqn import QNetwork, loss_function, make_optimizer

HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))


@dataclass(frozen=True)
class PPOSettings:
    """PPO's hyper-parameters: the first six are the session's (agent_params.json), named as DeepRacer
    names them where it has a name; the rest are the engine's."""

    rollout_length: int = 32  # steps each car drives between updates (all cars: rollout_length x cars)
    batch_size: int = 4096  # samples per gradient step
    num_epochs: int = 4  # passes over each rollout
    beta_entropy: float = 0.01  # weight of the entropy bonus (exploration)
    clip_range: float = 0.2  # how far one update may move the probability of an action
    gae_lambda: float = 0.95  # GAE: 0 trusts the critic, 1 the sampled returns
    value_coefficient: float = 0.5
    max_grad_norm: float = 0.5
    initial_log_std: float = -0.5  # continuous car: the policy's first standard deviation is e^-0.5 = 0.61


def critic_layers(layers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The critic's layers: the actor's, with one output (the value)."""
    return [*layers[:-1], (layers[-1][0], 1)]


def _orthogonal(network: QNetwork, last_gain: float) -> None:
    """CleanRL's initialisation: orthogonal weights (gain sqrt 2, the last layer ``last_gain``), zero biases.
    A small last gain starts the actor near uniform (categorical) or near 0 (the Gaussian's mean)."""
    linears = [module for module in network.layers if isinstance(module, nn.Linear)]
    for i, linear in enumerate(linears):
        nn.init.orthogonal_(linear.weight, last_gain if i == len(linears) - 1 else np.sqrt(2))
        nn.init.zeros_(linear.bias)


class PPOAgent:
    """The actor, the critic, the rollout of ``num_cars`` cars, acting and learning."""

    def __init__(self, layers: list[tuple[int, int]], learning_rate: float, optimizer: str, gamma: float,
                 loss_fn: str, num_cars: int, settings: PPOSettings | None = None, seed: int = 0,
                 observation_high: list[float] | None = None,
                 action_bounds: tuple[list[float], list[float]] | None = None) -> None:
        self.settings = settings or PPOSettings()
        self.gamma = gamma
        self.loss_fn = loss_fn
        self.continuous = action_bounds is not None
        torch.manual_seed(seed)
        self.actor = QNetwork(layers, observation_high, *(action_bounds or (None, None)))
        self.critic = QNetwork(critic_layers(layers), observation_high)
        _orthogonal(self.actor, 0.01)
        _orthogonal(self.critic, 1.0)
        outputs = layers[-1][1]
        self.log_std = nn.Parameter(torch.full((outputs,), self.settings.initial_log_std))
        parameters = [*self.actor.parameters(), *self.critic.parameters()]
        if self.continuous:
            parameters.append(self.log_std)
        self.optimizer = make_optimizer(optimizer, parameters, learning_rate)
        self.parameters = parameters
        self.updates = 0
        # The rollout: one row per step, one column per car.
        steps, inputs = self.settings.rollout_length, layers[0][0]
        self.observations = torch.zeros(steps, num_cars, inputs)
        self.actions = torch.zeros(steps, num_cars, outputs) if self.continuous else torch.zeros(
            steps, num_cars, dtype=torch.long)
        self.log_probs = torch.zeros(steps, num_cars)
        self.values = torch.zeros(steps, num_cars)
        self.rewards = torch.zeros(steps, num_cars)
        self.ends = torch.zeros(steps, num_cars)  # 1 where the step ended its episode (no bootstrap)
        self.step = 0

    # ----- acting --------------------------------------------------------------------------------------
    def log_prob_entropy(self, outputs: torch.Tensor, actions: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's log-probability of ``actions`` under the policy of ``outputs``, and its entropy.
        (Written out rather than ``torch.distributions``, whose argument checks cost more than the
        networks.)"""
        if self.continuous:
            log_std = self.log_std.expand_as(outputs)
            z = (actions - outputs) * torch.exp(-log_std)
            log_prob = (-0.5 * z * z - log_std - HALF_LOG_2PI).sum(dim=1)
            return log_prob, (0.5 + HALF_LOG_2PI + log_std).sum(dim=1)
        # One column per row: PyTorch's CPU log_softmax is several times faster across rows than along them.
        log_probabilities = torch.log_softmax(outputs.t().contiguous(), dim=0)
        entropy = -(log_probabilities.exp() * log_probabilities).sum(dim=0)
        return log_probabilities.gather(0, actions.unsqueeze(0)).squeeze(0), entropy

    @torch.no_grad()
    def act(self, observations: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sample every car's action and keep the step in the rollout; returns what the env takes (action
        indices, or ``[steering, speed]`` rows clipped into the bounds)."""
        obs = torch.from_numpy(np.asarray(observations, dtype=np.float32))
        outputs = self.actor(obs)
        if self.continuous:
            noise = torch.from_numpy(rng.standard_normal(outputs.shape).astype(np.float32))
            actions = outputs + noise * self.log_std.exp()
            driven = self.actor.to_actions(actions)
        else:
            probabilities = torch.softmax(outputs, dim=1).numpy()
            draws = rng.random((len(probabilities), 1))
            indices = (probabilities.cumsum(axis=1) < draws).sum(axis=1).clip(max=probabilities.shape[1] - 1)
            actions = torch.from_numpy(indices)
            driven = indices
        log_probs, _ = self.log_prob_entropy(outputs, actions)
        t = self.step
        self.observations[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = self.critic(obs).squeeze(1)
        return driven

    @torch.no_grad()
    def value(self, observations: np.ndarray) -> np.ndarray:
        """The critic's value of each observation (in normalized reward units)."""
        return self.critic(torch.from_numpy(np.asarray(observations, dtype=np.float32))).squeeze(1).numpy()

    def record(self, rewards: np.ndarray, ends: np.ndarray) -> bool:
        """The rewards of the step :meth:`act` began (normalized, bootstrapped where an episode ended
        without a crash) and where an episode ended; True once the rollout is full."""
        self.rewards[self.step] = torch.from_numpy(np.asarray(rewards, dtype=np.float32))
        self.ends[self.step] = torch.from_numpy(np.asarray(ends, dtype=np.float32))
        self.step += 1
        return self.step == self.settings.rollout_length

    # ----- learning ------------------------------------------------------------------------------------
    def advantages(self, next_observations: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE advantages and the returns the critic learns (advantage + value), one per rollout step."""
        s = self.settings
        next_value = torch.from_numpy(self.value(next_observations))
        advantages = torch.zeros_like(self.rewards)
        running = torch.zeros_like(next_value)
        for t in reversed(range(self.step)):
            following = next_value if t == self.step - 1 else self.values[t + 1]
            carries = 1.0 - self.ends[t]
            delta = self.rewards[t] + self.gamma * following * carries - self.values[t]
            running = delta + self.gamma * s.gae_lambda * carries * running
            advantages[t] = running
        return advantages, advantages + self.values

    def update(self, next_observations: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
        """Learn from the full rollout (``next_observations``: every car's observation after its last step)
        and start the next one; returns the last minibatch's losses."""
        s = self.settings
        advantages, returns = self.advantages(next_observations)
        n = self.step * self.observations.shape[1]
        observations = self.observations[: self.step].reshape(n, -1)
        actions = self.actions[: self.step].reshape(n, *self.actions.shape[2:])
        old_log_probs, advantages = self.log_probs[: self.step].reshape(n), advantages.reshape(n)
        returns = returns.reshape(n)
        batch = min(s.batch_size, n)
        losses: dict[str, float] = {}
        for _ in range(s.num_epochs):
            order = torch.from_numpy(rng.permutation(n))
            for start in range(0, n - batch + 1, batch):
                index = order[start : start + batch]
                log_probs, entropy = self.log_prob_entropy(self.actor(observations[index]), actions[index])
                advantage = advantages[index]
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                ratio = (log_probs - old_log_probs[index]).exp()
                policy_loss = torch.max(-advantage * ratio,
                                        -advantage * ratio.clamp(1 - s.clip_range, 1 + s.clip_range)).mean()
                value_loss = loss_function(self.loss_fn, self.critic(observations[index]).squeeze(1),
                                           returns[index])
                loss = policy_loss - s.beta_entropy * entropy.mean() + s.value_coefficient * value_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.parameters, s.max_grad_norm, foreach=True)
                self.optimizer.step()
                losses = {"policy": policy_loss.item(), "value": value_loss.item(),
                          "entropy": entropy.mean().item()}
        self.updates += 1
        self.step = 0
        return losses

    # ----- saving --------------------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to continue learning (a partly filled rollout is dropped: the resumed run
        starts a new one)."""
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "log_std": self.log_std.detach().clone(), "optimizer": self.optimizer.state_dict(),
                "updates": self.updates}

    def load_state(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.step = 0
