"""The job manager: trainings in real worker processes on real session files, queued, stopped, failing,
killed, relayed to subscribers, and shut down."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from jobs_support import (  # noqa: F401  (home, manager_factory, store: fixtures)
    FAILING_REWARD,
    LONG,
    alive,
    drain,
    home,
    make_session,
    manager_factory,
    store,
    wait_state,
    wait_until,
)

from rewards_api.agents.dqn import QNetwork
from rewards_api.runs.jobs import (
    STOP_GRACE,
    WORKER_NICENESS,
    JobManager,
    JobState,
    QueueFull,
    Subscription,
    UserLimitReached,
)
from rewards_api.store import SessionNotFound, SessionStore, user_home

# ----- subscriptions on their own ---------------------------------------------------------------------------


def test_a_full_subscription_drops_its_oldest_items() -> None:
    subscription = Subscription("s", maxsize=3)
    for i in range(10):
        subscription.put({"i": i})
    assert len(subscription) == 3 and subscription.dropped == 7
    assert [subscription.get(0)["i"] for _ in range(3)] == [7, 8, 9]  # type: ignore[index]
    assert subscription.get(timeout=0.01) is None
    subscription.close()
    assert subscription.get() is None and list(subscription) == []


def test_a_subscription_is_awaitable_and_fed_from_another_thread() -> None:
    subscription = Subscription("s")

    async def consume() -> list[Any]:
        assert await subscription.next(timeout=0.05) is None  # times out, the loop stays free
        threading.Timer(0.05, subscription.put, [{"i": 1}]).start()
        first = await subscription.next(timeout=5)
        threading.Timer(0.05, subscription.put, [{"i": 2}]).start()
        threading.Timer(0.1, subscription.close).start()
        rest = [item async for item in subscription]
        return [first, *rest]

    assert asyncio.run(consume()) == [{"i": 1}, {"i": 2}]


# ----- jobs in worker processes -----------------------------------------------------------------------------


def test_a_job_trains_to_the_end_and_every_subscriber_sees_it(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    name = make_session(store, "racer", episodes=30)
    manager = manager_factory()
    with pytest.raises(SessionNotFound):
        manager.start("nobody")
    assert manager.stop("nobody") is None and manager.status("nobody") is None
    slow = manager.subscribe(name, maxsize=4)  # never read until the end
    fast = manager.subscribe(name)

    first = manager.start(name)
    again = manager.start(name)  # a second viewer attaches to the same run
    assert first.state is JobState.queued and again.queued_at == first.queued_at
    assert manager.is_active(name)

    async def follow() -> list[dict[str, Any]]:
        items = []
        async for item in fast:
            items.append(item)
            if item["kind"] == "state" and item["state"] in {"finished", "failed", "stopped"}:
                return items
        return items

    items = asyncio.run(asyncio.wait_for(follow(), 60))
    status = manager.status(name)
    assert status is not None and status.state is JobState.finished, status
    assert status.episode == status.episodes == 30 and status.error is None
    assert status.started_at is not None and status.finished_at is not None
    assert status.queued_at <= status.started_at <= status.finished_at  # type: ignore[operator]
    assert [status] == manager.jobs() and not manager.is_active(name)

    states = [item["state"] for item in items if item["kind"] == "state"]
    assert states[0] == "queued" and "running" in states and states[-1] == "finished"
    episodes = [item for item in items if item["kind"] == "episode"]
    assert [item["episode"] for item in episodes] == list(range(1, 31))
    assert [item["kind"] for item in items[-2:]] == ["finished", "state"]
    assert items[-2]["episodes"] == 30 and not items[-2]["stopped"]
    assert status.record == max(item["score"] for item in episodes) == items[-2]["record"]
    assert status.last_score == episodes[-1]["score"]
    assert items[-1] == {"kind": "state", **status.to_dict()}  # JSON-ready, state as a string

    metrics = store.read(name, "training_metrics")
    assert metrics["plot_scores"] == [item["score"] for item in episodes]

    # The slow subscriber held the relay up for nobody, and kept only its newest items.
    assert len(slow) == 4 and slow.dropped == len(items) - 4
    assert drain(slow) == items[-4:]

    # A finished job's weights are let go (issue 14: a big network's copies added up): the model is saved.
    assert status.layers == [(5, 9), (9, 3)]
    assert manager.latest_weights(name) is None
    assert store.paths(name).model.exists()
    fast.close()
    slow.close()


def test_jobs_wait_for_a_free_slot_and_stop_whether_queued_or_running(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    long = make_session(store, "long", episodes=LONG)
    second = make_session(store, "second", episodes=20)
    third = make_session(store, "third", episodes=20)
    manager = manager_factory(max_jobs=1, max_queued=2)
    watcher = manager.subscribe(second)
    manager.start(long)
    running = wait_state(manager, long, (JobState.running,))
    manager.start(second)
    manager.start(third)
    # The queue is bounded: a fourth waits nowhere and says why.
    fourth = make_session(store, "fourth", episodes=20)
    with pytest.raises(QueueFull, match="2 trainings are already waiting"):
        manager.start(fourth)
    assert manager.status(fourth) is None

    assert running.pid is not None
    # Trainings yield the CPU to the server: a busy machine still answers requests at once.
    expected = min(os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS, 19)
    assert os.getpriority(os.PRIO_PROCESS, running.pid) == expected
    assert manager.status(second).state is JobState.queued  # type: ignore[union-attr]

    # A queued job is dropped without ever running.
    stopped = manager.stop(third)
    assert stopped is not None and stopped.state is JobState.stopped and stopped.started_at is None
    assert not manager.is_active(third)

    # Live weights of the running job, loadable into its network, refreshed as it trains.
    weights = wait_until(lambda: manager.latest_weights(long), what="the first weights")
    layers = wait_until(lambda: manager.status(long).layers)  # type: ignore[union-attr]
    QNetwork(layers).load_state_dict(weights)
    wait_until(lambda: manager.status(long).episode >= 5, what="some episodes")  # type: ignore[union-attr]
    wait_until(lambda: manager.latest_weights(long) is not weights, timeout=5, what="newer weights")
    assert manager.status(long).episodes == LONG  # type: ignore[union-attr]
    assert manager.status(second).state is JobState.queued  # type: ignore[union-attr]

    began = time.monotonic()
    manager.stop(long)
    assert time.monotonic() - began < 0.5  # signals, does not wait
    status = wait_state(manager, long, timeout=10)
    assert status.state is JobState.stopped and status.error is None and 0 < status.episode < LONG
    paths = store.paths(long)
    assert paths.model.exists() and paths.resume_checkpoint.exists()
    saved = torch.load(paths.resume_checkpoint, weights_only=False)
    assert saved["episodes"] == status.episode

    # The freed slot goes to the queued job, which runs to its end.
    assert wait_state(manager, second).state is JobState.finished
    items = drain(watcher)
    states = [item["state"] for item in items if item["kind"] == "state"]
    assert states[0] == "queued" and "running" in states and states[-1] == "finished"
    assert sum(item["kind"] == "episode" for item in items) == 20
    assert manager.status(third).state is JobState.stopped  # type: ignore[union-attr]
    assert manager.status(third).started_at is None  # type: ignore[union-attr]


def test_a_users_limit_holds_when_their_requests_come_at_once(
        home: Path, store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    ann = SessionStore(user_home(home, "ann"))
    sessions = [make_session(ann, f"s{i}", episodes=LONG) for i in range(8)]
    owned = make_session(store, "owned", episodes=LONG)
    manager = manager_factory(max_jobs=1)
    manager.start(owned)  # takes the one slot (the owner has no limit): ann's trainings only queue
    barrier = threading.Barrier(len(sessions))
    outcomes: dict[str, str] = {}

    def start(session: str) -> None:
        barrier.wait()
        try:
            outcomes[session] = manager.start(session, "ann", user_limit=2).state.value
        except UserLimitReached as exc:
            outcomes[session] = str(exc)

    threads = [threading.Thread(target=start, args=(session,)) for session in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    started = [session for session, outcome in outcomes.items() if outcome == "queued"]
    assert len(started) == 2, outcomes
    refused = [outcome for outcome in outcomes.values() if outcome != "queued"]
    assert len(refused) == 6 and all("the limit is 2: stop one first" in text for text in refused)
    # Asking again for a session already queued is no new training: it is not refused.
    assert manager.start(started[0], "ann", user_limit=2).state is JobState.queued
    # The limit is the user's own: another user still starts.
    bob = SessionStore(user_home(home, "bob"))
    assert manager.start(make_session(bob, "b"), "bob", user_limit=2).state is JobState.queued
    manager.stop(started[0], "ann")  # a slot of ann's is free again
    other = next(session for session in sessions if session not in started)
    assert manager.start(other, "ann", user_limit=2).state is JobState.queued


def test_failing_and_killed_workers_fail_their_job_only(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    bad = make_session(store, "bad", episodes=LONG, reward=FAILING_REWARD)
    victim = make_session(store, "victim", episodes=LONG)
    after = make_session(store, "after", episodes=15)
    manager = manager_factory(max_jobs=2)
    watcher = manager.subscribe(victim)
    manager.start(bad)
    manager.start(victim)

    failed = wait_state(manager, bad)
    assert failed.state is JobState.failed
    assert "KeyError" in (failed.error or "") and "line 3" in (failed.error or "")

    wait_until(lambda: manager.status(victim).episode > 0, what="the victim to train")  # type: ignore[union-attr]
    pid = manager.status(victim).pid  # type: ignore[union-attr]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = wait_state(manager, victim, timeout=10)
    assert killed.state is JobState.failed
    assert "the training process exited unexpectedly (exit code -9" in (killed.error or "")
    items = drain(watcher)
    assert [item["kind"] for item in items[-2:]] == ["failed", "state"]
    assert "exited unexpectedly" in items[-2]["message"]

    # The manager goes on: another job runs to its end, and the failed ones may start again.
    manager.start(after)
    assert wait_state(manager, after).state is JobState.finished
    assert manager.status(after).episode == 15  # type: ignore[union-attr]


def test_shutdown_stops_every_job_and_leaves_no_worker(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    one = make_session(store, "one", episodes=LONG)
    two = make_session(store, "two", episodes=LONG)
    queued = make_session(store, "queued", episodes=LONG)
    manager = manager_factory(max_jobs=2)
    subscription = manager.subscribe(one)
    for name in (one, two, queued):
        manager.start(name)
    pids = [wait_state(manager, name, (JobState.running,)).pid for name in (one, two)]
    wait_until(lambda: manager.status(one).episode > 0, what="training")  # type: ignore[union-attr]

    manager.shutdown(timeout=20)
    manager.shutdown()  # twice is fine
    assert {status.session_id: status.state for status in manager.jobs()} == {
        one: JobState.stopped, two: JobState.stopped, queued: JobState.stopped}
    assert all(not alive(pid) for pid in pids if pid is not None)
    assert store.paths(one).resume_checkpoint.exists()
    assert subscription.closed
    assert [item["state"] for item in drain(subscription) if item["kind"] == "state"][-1] == "stopped"
    with pytest.raises(RuntimeError, match="shut down"):
        manager.start(one)


def test_retiring_a_session_drops_or_stops_its_job_kills_a_stuck_worker_and_refuses_starts(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    stuck = make_session(store, "stuck", episodes=LONG)
    waiting = make_session(store, "waiting", episodes=LONG)
    manager = manager_factory(max_jobs=1)
    manager.start(stuck)
    pid = wait_state(manager, stuck, (JobState.running,)).pid
    manager.start(waiting)
    wait_until(lambda: manager.status(stuck).episode > 0, what="training")  # type: ignore[union-attr]

    with manager.retired(waiting) as dropped:  # queued: dropped at once, never run
        assert dropped is not None and dropped.state is JobState.stopped and dropped.started_at is None
        store.delete(waiting)
    assert manager.status(waiting) is None  # forgotten: a new session of that id starts afresh

    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a worker that cannot answer its stop
    began = time.monotonic()
    timeout = STOP_GRACE / 2  # shorter than a stop's own grace: the deletion's wait is what kills it
    with manager.retired(stuck, timeout=timeout) as status:
        waited = time.monotonic() - began
        assert timeout <= waited < timeout + 5.0 and not alive(pid)
        assert status is not None and status.state is JobState.stopped
        assert status.error == ("the training process did not stop in time when its session was deleted and "
                                "was killed")
        with pytest.raises(SessionNotFound, match="'stuck' is being deleted"):
            manager.start(stuck)
        store.delete(stuck)
    assert manager.status(stuck) is None and manager.jobs() == []
    make_session(store, "stuck", episodes=5)  # the id is free again, and trains
    manager.start(stuck)
    assert wait_state(manager, stuck).state is JobState.finished
