"""What the tests of training jobs share: fast training options, sessions, waiting for a state, and the
fixtures ``home``, ``store`` and ``manager_factory`` (JobManagers shut down after the test); a test module
imports the fixtures it uses by name."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rewards_api.agents.dqn import DQNSettings
from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.runs.jobs import JobManager, JobState, JobStatus, Subscription
from rewards_api.runs.train import TrainingOptions
from rewards_api.store import SessionStore

FAST = TrainingOptions(num_cars=8, seed=0, settings=DQNSettings(learning_starts=64, batch_size=32))
LONG = 100_000  # episodes: a run that only ends when it is stopped
FINAL = (JobState.finished, JobState.failed, JobState.stopped)
FAILING_REWARD = ("def reward_function(params):\n    if params['steps'] > 5:\n"
                  "        return params['nope']\n    return 1\n")


def make_session(store: SessionStore, name: str, episodes: int = 30, reward: str | None = None) -> str:
    store.create(name)
    store.write_env_params(name, EnvParams(environment_world=1))
    store.write_agent_params(name, AgentParams(num_episodes=episodes, model_configuration="[[5, 9], [9, 3]]"))
    store.write_training_params(name, TrainingParams(**({"reward_function": reward} if reward else {})))
    return name


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def wait_state(manager: JobManager, name: str, states: tuple[JobState, ...] = FINAL,
               timeout: float = 30.0) -> JobStatus:
    def reached() -> JobStatus | None:
        status = manager.status(name)
        return status if status is not None and status.state in states else None

    return wait_until(reached, timeout, f"{name} to be {'/'.join(s.value for s in states)}")


def drain(subscription: Subscription) -> list[dict[str, Any]]:
    items = []
    while (item := subscription.get(timeout=0)) is not None:
        items.append(item)
    return items


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> SessionStore:
    return SessionStore(home)


@pytest.fixture
def manager_factory(home: Path) -> Iterator[Callable[..., JobManager]]:
    managers: list[JobManager] = []

    def make(max_jobs: int | None = 2, max_queued: int = 64) -> JobManager:
        manager = JobManager(home, max_jobs=max_jobs, options=FAST, max_queued=max_queued)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.shutdown(timeout=5)
