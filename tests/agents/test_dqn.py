"""The learning engine's pieces: network, losses, optimizers, replay, exploration and the update."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewards_api.agents.dqn import (
    DQNAgent,
    DQNSettings,
    QNetwork,
    ReplayBuffer,
    epsilon_at,
    load_q_network,
    loss_function,
    make_optimizer,
)


def test_q_network_follows_the_model_configuration() -> None:
    network = QNetwork([(5, 49), (49, 16), (16, 3)])
    linear = [m for m in network.layers if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(5, 49), (49, 16), (16, 3)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in network.layers) == 2
    assert network(torch.zeros(7, 5)).shape == (7, 3)


def test_q_network_round_trips_through_a_pth_file(tmp_path) -> None:
    network = QNetwork([(5, 9), (9, 3)])
    torch.save(network.state_dict(), tmp_path / "model.pth")
    loaded = load_q_network([(5, 9), (9, 3)], str(tmp_path / "model.pth"))
    observations = torch.rand(4, 5) * 200
    assert torch.equal(network(observations), loaded(observations))
    with pytest.raises(RuntimeError):
        load_q_network([(5, 10), (10, 3)], str(tmp_path / "model.pth"))


def test_observations_are_scaled_inside_the_network() -> None:
    network = QNetwork([(5, 3)])
    linear = network.layers[0]
    x = torch.full((1, 5), 200.0)
    assert torch.allclose(network(x), linear(torch.ones(1, 5)))


@pytest.mark.parametrize(("name", "expected"), [("mse", 4.0), ("rmse", 2.0), ("mae", 2.0), ("huber", 1.5)])
def test_losses(name: str, expected: float) -> None:
    value = loss_function(name, torch.tensor([2.0, -2.0]), torch.zeros(2))
    assert value.item() == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="loss_fn must be one of"):
        loss_function("hinge", torch.zeros(1), torch.zeros(1))


@pytest.mark.parametrize(("name", "kind"), [("adam", torch.optim.Adam), ("rmsprop", torch.optim.RMSprop),
                                            ("adagrad", torch.optim.Adagrad)])
def test_optimizers(name: str, kind: type) -> None:
    optimizer = make_optimizer(name, list(QNetwork([(5, 3)]).parameters()), 0.05)
    assert isinstance(optimizer, kind) and optimizer.param_groups[0]["lr"] == 0.05
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("sgd", [], 0.1)


def test_epsilon_decays_linearly_to_its_floor() -> None:
    settings = DQNSettings(epsilon_floor=0.01, epsilon_decay_fraction=0.5)
    assert epsilon_at(0, 0.2, 700, settings) == pytest.approx(0.2)
    assert epsilon_at(175, 0.2, 700, settings) == pytest.approx(0.105)
    assert epsilon_at(350, 0.2, 700, settings) == pytest.approx(0.01)
    assert epsilon_at(10_000, 0.2, 700, settings) == pytest.approx(0.01)
    assert epsilon_at(0, 0.0, 700, settings) == 0.0  # no exploration asked, none given


def test_replay_buffer_wraps_around_and_samples_what_was_stored() -> None:
    buffer = ReplayBuffer(capacity=10)
    for start in (0, 6, 12):
        n = 6
        obs = np.arange(start, start + n, dtype=np.float32)[:, None].repeat(5, axis=1)
        buffer.add(obs, np.ones(n, dtype=np.int64), np.full(n, 2.0), obs + 1, np.zeros(n))
    assert buffer.size == 10
    stored = set(buffer.rows[:, 0].tolist())
    assert stored == set(map(float, range(8, 18)))
    obs, actions, rewards, next_obs, dones = buffer.sample(64, np.random.default_rng(0))
    assert torch.equal(next_obs, obs + 1) and set(obs[:, 0].tolist()) <= stored
    assert actions.dtype == torch.int64 and rewards.eq(2.0).all() and dones.eq(0).all()


def test_the_update_uses_double_dqn_targets_and_ends_at_dead_ends() -> None:
    settings = DQNSettings(batch_size=2, target_update_every=1000)
    agent = DQNAgent([(5, 3)], 0.0, "mse", "adam", gamma=0.5, settings=settings)
    with torch.no_grad():
        for network in (agent.q, agent.target):
            network.layers[0].weight.zero_()
        agent.q.layers[0].bias.copy_(torch.tensor([0.0, 1.0, 0.0]))  # the online net prefers action 1
        agent.target.layers[0].bias.copy_(torch.tensor([10.0, 4.0, 0.0]))  # the target values action 1 at 4
    buffer = ReplayBuffer(4)
    obs = np.zeros((2, 5), dtype=np.float32)
    buffer.add(obs, np.array([0, 0]), np.array([1.0, 1.0]), obs, np.array([0.0, 1.0]))
    loss = agent.update(buffer, np.random.default_rng(0))
    # targets: 1 + 0.5 * 4 = 3 when bootstrapping, 1 at a dead end; prediction Q(s, 0) = 0
    expected = {(3.0**2 + 3.0**2) / 2, (3.0**2 + 1.0) / 2, (1.0 + 1.0) / 2}
    assert round(loss, 4) in {round(e, 4) for e in expected}


def test_agent_state_round_trips() -> None:
    first = DQNAgent([(5, 9), (9, 3)], 0.01, "huber", "rmsprop", 0.9, seed=1)
    second = DQNAgent([(5, 9), (9, 3)], 0.01, "huber", "rmsprop", 0.9, seed=2)
    second.load_state(first.state())
    observations = np.random.default_rng(0).uniform(0, 200, (8, 5)).astype(np.float32)
    assert np.array_equal(first.greedy(observations), second.greedy(observations))
    assert second.updates == first.updates


def test_acting_explores_at_the_given_rate() -> None:
    agent = DQNAgent([(5, 3)], 0.01, "mse", "adam", 0.9)
    observations = np.zeros((10_000, 5), dtype=np.float32)
    greedy = agent.greedy(observations)
    assert (greedy == greedy[0]).all()
    acted = agent.act(observations, 0.3, np.random.default_rng(0))
    changed = (acted != greedy).mean()
    # A random action is the greedy one a third of the time.
    assert changed == pytest.approx(0.3 * 2 / 3, abs=0.02)
