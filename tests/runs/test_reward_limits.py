"""Run-time limits on reward code in real worker processes: a runaway, a memory bomb, an uninterruptible C
operation and a raise mid-run each fail their own job within seconds with a message that names the cause,
while another job trains on. Plus the guard's own behaviour in this process."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs_support import wait_until

from rewards_api.agents.dqn import DQNSettings
from rewards_api.envs.reward import RewardFunctionError, compile_reward_source, get_call_guard, sample_params
from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.runs.jobs import JobManager, JobState, JobStatus
from rewards_api.runs.reward_limits import CALL_CPU_LIMIT, CpuLimits, call_limits, explain_exit
from rewards_api.runs.train import TrainingOptions
from rewards_api.store import SessionStore

FAST = TrainingOptions(num_cars=8, seed=0, settings=DQNSettings(learning_starts=64, batch_size=32))
FINAL = (JobState.finished, JobState.failed, JobState.stopped)


def later(body: str) -> str:
    """A reward that behaves on the sample params it is checked with (steps <= 5) and misbehaves later."""
    lines = "\n".join(f"        {line}" for line in body.splitlines())
    return f"def reward_function(params):\n    if params['steps'] > 5:\n{lines}\n    return 1.0\n"


HOSTILE: dict[str, tuple[str, tuple[str, ...]]] = {
    # name: (source, words the job's error must contain)
    "endless loop": (later("while True:\n    pass"), ("more than 1 s of CPU time", "(line ")),
    "memory bomb": (later("x = 'a' * 10**10"), ("used too much memory", "line 3")),
    "C operation": (later("return sum(range(10**12))"), ("could not be interrupted", "SIGXCPU")),
    "raise": (later("raise ValueError('boom')"), ("ValueError: boom", "line 3")),
}


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "home")


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[JobManager]:
    jobs = JobManager(tmp_path / "home", max_jobs=len(HOSTILE) + 1, options=FAST)
    yield jobs
    jobs.shutdown(timeout=5)


def make_session(store: SessionStore, name: str, reward: str, episodes: int = 100_000) -> str:
    store.create(name)
    store.write_env_params(name, EnvParams(environment_world=1))
    store.write_agent_params(name, AgentParams(num_episodes=episodes, model_configuration="[[5, 9], [9, 3]]"))
    store.write_training_params(name, TrainingParams(reward_function=reward))
    return name


def test_hostile_rewards_fail_their_own_job_and_another_trains_on(
        store: SessionStore, manager: JobManager) -> None:
    good = make_session(store, "good", "def reward_function(params):\n    return 1.0\n")
    names = {name: make_session(store, name.replace(" ", "_"), source)
             for name, (source, _) in HOSTILE.items()}
    manager.start(good)
    for session in names.values():
        manager.start(session)
    # When each worker has started to train (PyTorch and the radar maps of five workers on two cores take
    # most of the time), and when its job ended.
    training: dict[str, float] = {}
    ended: dict[str, JobStatus] = {}
    deadline = time.monotonic() + 90
    while len(ended) < len(names) and time.monotonic() < deadline:
        for name, session in names.items():
            status = manager.status(session)
            if status is not None and status.episodes and name not in training:
                training[name] = time.monotonic()
            if status is not None and status.state in FINAL and name not in ended:
                training.setdefault(name, time.monotonic())
                ended[name] = status
                ended[name].finished_at = time.monotonic() - training[name]  # seconds of training
        time.sleep(0.05)
    assert set(ended) == set(names), f"not ended: {set(names) - set(ended)}"
    for name, status in ended.items():
        assert status.state is JobState.failed, (name, status)
        for words in HOSTILE[name][1]:
            assert words in (status.error or ""), (name, status.error)
        # Within seconds of CPU time; five processes share two cores here.
        assert (status.finished_at or 0) < 30, (name, status.finished_at)
    running = manager.status(good)
    assert running is not None and running.state is JobState.running and running.error is None
    steps = running.steps
    wait_until(lambda: manager.status(good).steps > steps, 20, "the good job to go on")  # type: ignore[union-attr]
    manager.stop(good)
    assert wait_until(lambda: manager.status(good).state in FINAL and manager.status(good),  # type: ignore[union-attr]
                      20, "the good job to stop").state is JobState.stopped


# ----- the guard in this process ------------------------------------------------------------------------


def test_a_runaway_call_is_stopped_with_its_line_and_the_limit() -> None:
    source = "def reward_function(params):\n    x = 0\n    while True:\n        x = x + 1\n"
    started = time.process_time()
    with call_limits(), pytest.raises(RewardFunctionError) as caught:
        compile_reward_source(source)(sample_params())
    assert time.process_time() - started < CALL_CPU_LIMIT + 1
    assert f"more than {CALL_CPU_LIMIT:g} s of CPU time" in caught.value.problem
    assert caught.value.line in (3, 4)
    assert get_call_guard() is None and signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_a_runaway_module_top_level_is_stopped_too() -> None:
    with call_limits(), pytest.raises(RewardFunctionError, match="more than 1 s") as caught:
        compile_reward_source("while True:\n    pass\ndef reward_function(params):\n    return 1\n")
    assert caught.value.line == 1


def test_slow_calls_are_fine_one_by_one_but_not_for_a_whole_episode() -> None:
    guard = CpuLimits(call_limit=1.0, episode_limit=0.5)
    with call_limits():  # a SIGPROF handler in place while the guard's timer is armed
        guard.mean_call = 0.002  # as if each call took 2 ms: 400 steps make 0.8 s
        guard.enter(None)
        with pytest.raises(RewardFunctionError, match=r"one episode took about 1 s .*400 steps"):
            guard.leave(10, 400)
        guard.mean_call = 0.0001  # 0.1 ms a call: 40 ms an episode
        guard.enter(None)
        guard.leave(10, 400)


def test_the_episode_limit_counts_steps_the_reward_cannot_rewrite() -> None:
    """params["steps"] = 1 in the reward does not make its episode look short (issue 14, finding 2)."""
    source = ("def reward_function(params):\n    params['steps'] = 1\n    x = 0\n"
              "    for i in range(50000):\n        x = x + i\n    return 1.0\n")
    with call_limits():
        guard = get_call_guard()
        assert isinstance(guard, CpuLimits)
        guard.episode_limit = 0.5  # ~1 ms a call as measured: 4000 steps make ~4 s
        fn = compile_reward_source(source)
        with pytest.raises(RewardFunctionError, match=r"one episode took about .*4000 steps"):
            for _ in range(200):
                fn.batch([sample_params({"steps": 4000}) for _ in range(10)])
        with pytest.raises(RewardFunctionError, match=r"one episode took about .*4000 steps"):
            for _ in range(200):
                fn.one(sample_params({"steps": 4000}))


def test_callables_from_python_run_without_limits() -> None:
    with call_limits():
        fn = compile_reward_source("def reward_function(params):\n    return 1\n")
        assert fn.guard is not None
    from rewards_api.envs.reward import load_reward_function
    assert load_reward_function(lambda params: 1).guard is None  # type: ignore[union-attr]
    assert fn.guard.enabled is False  # a function kept after the block arms no timer


def test_deaths_by_a_limit_are_explained() -> None:
    assert "could not be interrupted" in explain_exit(-signal.SIGXCPU, "the process exited (exit code -24)")
    assert "memory runs out" in explain_exit(-signal.SIGKILL, "the process exited (exit code -9)")
    assert explain_exit(1, "the process exited (exit code 1)") == "the process exited (exit code 1)"
