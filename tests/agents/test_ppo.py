"""PPO on problems whose answer is known, and the reward normalizer's invariance to the reward's scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewards_api.agents.normalize import RewardNormalizer
from rewards_api.agents.ppo import PPOAgent, PPOSettings, critic_layers

BOUNDS = ([-30.0, 0.5], [30.0, 4.0])
torch.set_num_threads(1)  # tiny networks: as training runs them (and two test workers share 2 cores)


def bandit_agent(settings: PPOSettings, cars: int = 64, continuous: bool = False,
                 learning_rate: float = 0.01) -> PPOAgent:
    layers = [(2, 16), (16, 2 if continuous else 3)]
    return PPOAgent(layers, learning_rate, "adam", 0.9, "mse", cars, settings, seed=1,
                    observation_high=[1.0, 1.0], action_bounds=BOUNDS if continuous else None)


def contexts(cars: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Half the cars see context 0 ([1, 0]), half context 1 ([0, 1]), at random."""
    which = rng.integers(0, 2, size=cars)
    return np.eye(2, dtype=np.float32)[which], which


def test_ppo_learns_a_contextual_bandit_whose_best_actions_are_known() -> None:
    """Context 0 pays for action 2, context 1 for action 0 (one-step episodes): the policy must put
    nearly all its probability there, and its greedy action must be the right one in both contexts."""
    settings = PPOSettings(rollout_length=8, batch_size=128, num_epochs=4, beta_entropy=0.0)
    agent = bandit_agent(settings)
    rng = np.random.default_rng(0)
    best = np.array([2, 0])
    for _ in range(40):
        for _ in range(settings.rollout_length):
            observations, which = contexts(64, rng)
            actions = agent.act(observations, rng)
            full = agent.record((actions == best[which]).astype(np.float32), np.ones(64, dtype=bool))
        assert full
        agent.update(observations, rng)
    probabilities = torch.softmax(agent.actor(torch.eye(2)), dim=1).detach().numpy()
    assert probabilities[0, 2] > 0.9 and probabilities[1, 0] > 0.9, probabilities
    assert agent.actor.greedy(np.eye(2, dtype=np.float32)).tolist() == [2, 0]
    assert agent.updates == 40 and agent.step == 0  # each update starts a new rollout


def test_gae_matches_the_formulas() -> None:
    """lambda = 1 with zero values gives the discounted returns, cut where an episode ended; lambda = 0
    gives one-step TD errors."""
    for lam in (1.0, 0.0):
        agent = bandit_agent(PPOSettings(rollout_length=3, gae_lambda=lam), cars=1)
        with torch.no_grad():
            for layer in (agent.critic.layers[-1],):
                layer.weight.zero_()
                layer.bias.fill_(0.5 if lam == 0.0 else 0.0)  # V = 0.5 everywhere (lambda 0), else 0
        agent.rewards[:, 0] = torch.tensor([1.0, 2.0, 4.0])
        agent.ends[:, 0] = torch.tensor([0.0, 1.0, 0.0])  # the second step ended an episode
        agent.values[:, 0] = 0.5 if lam == 0.0 else 0.0
        agent.step = 3
        advantages, returns = agent.advantages(np.zeros((1, 2), dtype=np.float32))
        g = agent.gamma
        if lam == 1.0:
            expected = [1.0 + g * 2.0, 2.0, 4.0]  # the last step bootstraps V(next) = 0
        else:
            expected = [1.0 + g * 0.5 - 0.5, 2.0 - 0.5, 4.0 + g * 0.5 - 0.5]
        assert advantages[:, 0].tolist() == pytest.approx(expected)
        assert returns[:, 0].tolist() == pytest.approx([a + agent.values[0, 0].item() for a in expected])


def test_the_clipped_objective_stops_moving_the_policy_beyond_the_clip() -> None:
    """Learning from one rollout again and again: once every sample's probability ratio is outside
    [1 - clip, 1 + clip] on its advantage's side, the clipped loss has no gradient and the actor stops
    changing (RMSprop, without momentum, takes no step on a zero gradient); without the clip (a range of
    100) it keeps being pushed."""

    def replayed(clip_range: float) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:
        settings = PPOSettings(rollout_length=4, batch_size=256, num_epochs=1, beta_entropy=0.0,
                               clip_range=clip_range, max_grad_norm=1e9)
        layers = [(2, 16), (16, 3)]
        agent = PPOAgent(layers, 0.01, "rmsprop", 0.9, "mse", 64, settings, seed=1,
                         observation_high=[1.0, 1.0])
        rng = np.random.default_rng(3)
        observations, _ = contexts(64, rng)
        for _ in range(4):
            actions = agent.act(observations, rng)
            agent.record((actions == 1).astype(np.float32), np.ones(64, dtype=bool))
        rollout = ("observations", "actions", "log_probs", "values", "rewards", "ends")
        saved = {name: getattr(agent, name).clone() for name in rollout}
        snapshots = []
        for _ in range(60):
            for name, value in saved.items():
                getattr(agent, name).copy_(value)
            agent.step = 4
            agent.update(observations, rng)
            snapshots.append([p.detach().clone() for p in agent.actor.parameters()])
        with torch.no_grad():
            new = torch.log_softmax(agent.actor(saved["observations"].reshape(-1, 2)), dim=1)
            chosen = new.gather(1, saved["actions"].reshape(-1, 1)).squeeze(1)
            ratio = (chosen - saved["log_probs"].reshape(-1)).exp()
        return snapshots[-2], snapshots[-1], float(ratio.max())

    before, after, ratio = replayed(0.2)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # Beyond 1.2 only as far as the other actions' fall to 0.8 (and the step that crossed) lift it.
    assert ratio < 2.0, ratio
    before, after, unclipped_ratio = replayed(100.0)
    assert not all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert unclipped_ratio > 1.5 * ratio


def test_continuous_actions_stay_within_bounds_and_the_mean_is_learned() -> None:
    """Whatever the policy outputs, the car is given [steering, speed] inside the bounds; a reward of
    -(steering - 10)^2 teaches a mean steering of about 10 degrees."""
    agent = bandit_agent(PPOSettings(rollout_length=8, batch_size=256, beta_entropy=0.0), continuous=True)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        agent.log_std.fill_(2.0)  # std e^2 = 7.4 in [-1, 1] units: most samples fall outside the bounds
    observations = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (64, 1))
    driven = agent.act(observations, rng)
    assert driven.shape == (64, 2)
    assert (driven[:, 0] >= -30).all() and (driven[:, 0] <= 30).all()
    assert (driven[:, 1] >= 0.5).all() and (driven[:, 1] <= 4.0).all()
    assert {-30.0, 30.0} <= set(np.round(driven[:, 0], 3).tolist())  # clipped, not wrapped or rejected
    with torch.no_grad():
        agent.log_std.fill_(-0.5)
    agent.step = 0
    for _ in range(80):
        for _ in range(8):
            steering = agent.act(observations, rng)[:, 0]
            agent.record(-((steering - 10.0) / 30.0) ** 2, np.ones(64, dtype=bool))
        agent.update(observations, rng)
    greedy = agent.actor.greedy(observations[:1])[0]
    assert greedy[0] == pytest.approx(10.0, abs=3.0), greedy
    assert 0.5 <= greedy[1] <= 4.0
    huge = agent.actor.to_actions(torch.tensor([[50.0, -50.0]]))[0]
    assert huge.tolist() == [30.0, 0.5]


def test_the_critic_has_the_actors_hidden_layers_and_one_output() -> None:
    assert critic_layers([(6, 64), (64, 32), (32, 15)]) == [(6, 64), (64, 32), (32, 1)]
    agent = PPOAgent([(6, 8), (8, 15)], 3e-4, "rmsprop", 0.99, "huber", 4, observation_high=[200.0] * 5 + [4])
    assert set(agent.actor.state_dict()) == {"layers.0.weight", "layers.0.bias", "layers.2.weight",
                                             "layers.2.bias"}
    assert agent.critic.layers[-1].out_features == 1


def test_ppo_state_round_trips() -> None:
    settings = PPOSettings(rollout_length=4, batch_size=64)
    agent = bandit_agent(settings, continuous=True)
    rng = np.random.default_rng(0)
    observations, _ = contexts(64, rng)
    for _ in range(4):
        agent.act(observations, rng)
        agent.record(np.ones(64), np.zeros(64))
    agent.update(observations, rng)
    copy = bandit_agent(settings, continuous=True)
    copy.load_state(agent.state())
    assert copy.updates == 1
    assert torch.equal(copy.log_std, agent.log_std)
    for mine, theirs in ((agent.actor, copy.actor), (agent.critic, copy.critic)):
        for name, value in mine.state_dict().items():
            assert torch.equal(value, theirs.state_dict()[name])
    assert copy.optimizer.state_dict()["state"].keys() == agent.optimizer.state_dict()["state"].keys()


def rewards_stream(seed: int = 0, steps: int = 300, cars: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.random(cars) + 0.5, rng.random(cars) < 0.05) for _ in range(steps)]


@pytest.mark.parametrize("factor", [1e6, 1e-6, 1e12])
def test_normalized_rewards_do_not_depend_on_the_rewards_scale(factor: float) -> None:
    plain, scaled = RewardNormalizer(8, 0.9), RewardNormalizer(8, 0.9)
    for rewards, dones in rewards_stream():
        plain.observe(rewards, dones)
        scaled.observe(rewards * factor, dones)
        assert scaled.normalize(rewards * factor) == pytest.approx(plain.normalize(rewards), rel=1e-4)
    assert scaled.scale == pytest.approx(plain.scale * factor, rel=1e-4)
    # Without normalization the same rewards differ by the factor: what the learner saw before.
    assert 0.1 < float(np.abs(plain.normalize(np.ones(8))).mean()) < 10


def test_the_normalizer_survives_zero_infinite_and_huge_rewards() -> None:
    normalizer = RewardNormalizer(4, 0.99)
    for _ in range(50):
        normalizer.observe(np.zeros(4), np.zeros(4, dtype=bool))
    assert normalizer.normalize(np.zeros(4)).tolist() == [0.0] * 4
    normalizer.observe(np.array([1e308, 1e308, 0.0, 1.0]), np.zeros(4, dtype=bool))
    normalizer.observe(np.array([1e308, 1e308, 0.0, 1.0]), np.zeros(4, dtype=bool))  # returns overflow to inf
    assert np.isfinite(normalizer.var) and np.isfinite(normalizer.mean)
    scaled = normalizer.normalize(np.array([np.inf, -np.inf, np.nan, 1.0]))
    assert np.isfinite(scaled).all() and scaled[0] == 10.0 and scaled[1] == -10.0 and scaled[2] == 0.0


def test_the_normalizer_state_restores_the_estimate() -> None:
    normalizer = RewardNormalizer(8, 0.9)
    for rewards, dones in rewards_stream():
        normalizer.observe(rewards * 1e6, dones)
    restored = RewardNormalizer(8, 0.9)
    restored.load_state(normalizer.state())
    estimate = (normalizer.mean, normalizer.var, normalizer.count)
    assert (restored.mean, restored.var, restored.count) == estimate
    assert restored.normalize(np.array([1e6])).tolist() == normalizer.normalize(np.array([1e6])).tolist()
    assert restored.returns.tolist() == [0.0] * 8  # a new run starts every car on a new episode


def test_the_sessions_defaults_are_the_engines() -> None:
    """agent_params.json's PPO defaults (params.PPOParams, what AgentParams fills in) are PPOSettings'."""
    import dataclasses

    from rewards_api.params import PPO_KEYS, AgentParams, PPOParams

    session = dataclasses.asdict(PPOParams())
    engine = dataclasses.asdict(PPOSettings())
    assert set(session) == set(PPO_KEYS) and session == {key: engine[key] for key in session}
    assert AgentParams().config().ppo == PPOParams()
