"""Training workers forked from the preloaded fork server (rewards_api.runs.processes): how they start,
die, and end, through a real JobManager and real processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from jobs_support import (  # noqa: F401  (home, manager_factory, store: fixtures)
    FAST,
    LONG,
    alive,
    home,
    make_session,
    manager_factory,
    store,
    wait_state,
    wait_until,
)

from rewards_api.runs import processes
from rewards_api.runs.jobs import STOP_GRACE, JobManager, JobState
from rewards_api.store import SessionBusy, SessionStore


def ended(pid: int) -> bool:
    """Gone, or a zombie (the fork server is this process's child, reaped by multiprocessing only)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_the_fork_server_holds_one_thread_and_has_pytorch_loaded(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    name = make_session(store, "first", episodes=3)
    manager = manager_factory(max_jobs=1)
    manager.start(name)
    assert wait_state(manager, name).state is JobState.finished  # the fork server has preloaded by now
    pid = processes.fork_server_pid()
    assert pid is not None and alive(pid)
    assert threads_of(pid) == 1  # a fork of a process with threads (OpenBLAS's, PyTorch's) would be unsafe
    with open(f"/proc/{pid}/maps") as maps:
        assert "libtorch" in maps.read()  # loaded there once, not in every worker


def test_a_worker_that_dies_before_its_first_step_fails_its_job(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    name = make_session(store, "doomed", episodes=LONG)
    manager = manager_factory(max_jobs=1)
    with store.lock(name):  # the worker waits for the session's lock as it starts: before any step
        manager.start(name)
        pid = wait_until(lambda: manager.status(name).pid, what="the worker")  # type: ignore[union-attr]
        time.sleep(0.3)
        assert manager.status(name).steps == 0  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        status = wait_state(manager, name, timeout=10)
    assert status.state is JobState.failed
    assert "exited unexpectedly (exit code -9, signal SIGKILL)" in (status.error or "")
    assert status.steps == 0 and not alive(pid)
    manager.start(name)  # the next start works: a new fork
    wait_until(lambda: manager.status(name).steps > 0, what="the new worker to train")  # type: ignore[union-attr]
    assert manager.status(name).pid != pid  # type: ignore[union-attr]


def test_many_starts_at_once_each_get_a_worker_of_their_own(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    names = [make_session(store, f"car{i}", episodes=3) for i in range(8)]
    manager = manager_factory(max_jobs=8)
    barrier = threading.Barrier(len(names))

    def start(name: str) -> None:
        barrier.wait()
        manager.start(name)

    starters = [threading.Thread(target=start, args=(name,)) for name in names]
    for starter in starters:
        starter.start()
    pids = set()
    for starter in starters:
        starter.join()
    for name in names:
        pids.add(wait_state(manager, name, (JobState.running, JobState.finished)).pid)
    statuses = [wait_state(manager, name, timeout=60) for name in names]
    assert [status.state for status in statuses] == [JobState.finished] * len(names)
    assert all(status.episode == 3 for status in statuses)
    assert all(store.paths(name).model.is_file() for name in names)
    assert len(pids - {None}) >= 2  # separate processes (some may have ended before their pid was read)


def test_a_start_during_shutdown_leaves_no_worker_and_no_running_job(store: SessionStore) -> None:
    names = [make_session(store, f"late{i}", episodes=LONG) for i in range(3)]
    manager = JobManager(store.home, max_jobs=2, options=FAST)
    manager.start(names[0])
    wait_until(lambda: manager.status(names[0]).steps > 0, what="training")  # type: ignore[union-attr]
    refused: list[BaseException] = []

    def start_late() -> None:
        for name in names[1:]:
            try:
                manager.start(name)
            except RuntimeError as exc:  # "shut down": the manager refuses once it is closing
                refused.append(exc)

    starter = threading.Thread(target=start_late)
    shutting = threading.Thread(target=manager.shutdown, kwargs={"timeout": 20})
    shutting.start()
    starter.start()
    starter.join()
    shutting.join(timeout=30)
    assert not shutting.is_alive()
    statuses = {status.session_id: status for status in manager.jobs()}
    assert all(not status.active for status in statuses.values()), statuses
    assert all(status.pid is None for status in statuses.values())
    assert len(statuses) + len(refused) == len(names)  # every start was either taken and ended, or refused
    assert statuses[names[0]].state is JobState.stopped
    assert store.paths(names[0]).resume_checkpoint.exists()


def test_a_killed_fork_server_is_replaced_for_the_next_start(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    first, second = make_session(store, "before", episodes=3), make_session(store, "after", episodes=3)
    manager = manager_factory(max_jobs=1)
    manager.start(first)
    assert wait_state(manager, first).state is JobState.finished
    old = processes.fork_server_pid()
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: ended(old), what="the fork server to die")
    manager.start(second)
    assert wait_state(manager, second).state is JobState.finished
    assert processes.fork_server_pid() not in (None, old)


def test_a_stop_while_the_worker_starts_is_waited_for_not_killed(store: SessionStore) -> None:
    # Only reward code may be cut short after STOP_GRACE: a worker still starting (loading its session,
    # building its tracks) or saving at the end runs trusted code, and killing it would lose the run's record.
    name = make_session(store, "starting", episodes=LONG)
    with JobManager(store.home, max_jobs=1, options=replace(FAST, tracks=(1, 2))) as manager:
        with store.lock(name):  # the worker's start-up waits for the session's lock: a start-up of 2 s
            manager.start(name)
            wait_until(lambda: manager.status(name).pid, what="the worker")
            manager.stop(name)
            time.sleep(STOP_GRACE + 0.8)
            assert manager.status(name).state is JobState.running  # type: ignore[union-attr]
        status = wait_state(manager, name)
    assert status.state is JobState.stopped and status.error is None, status


def test_a_worker_marks_its_session_busy_and_refuses_one_marked_by_another_process(
        store: SessionStore, manager_factory: Callable[..., JobManager]) -> None:
    name = make_session(store, "shared", episodes=LONG)
    manager = manager_factory(max_jobs=1)
    with store.training_mark(name, "changing its parameters"):  # as rewards-api set does
        manager.start(name)
        refused = wait_state(manager, name)
    assert refused.state is JobState.failed
    assert f"is busy (process {os.getpid()} is changing its parameters)" in (refused.error or "")
    manager.start(name)
    wait_until(lambda: manager.status(name).steps > 0, what="training")  # type: ignore[union-attr]
    with pytest.raises(SessionBusy, match=r"is busy \(process \d+ is training it \(the server\)\)"), \
            store.training_mark(name, "training it (rewards-api train)"):
        pass
    manager.stop(name)
    assert wait_state(manager, name).state is JobState.stopped
    with store.training_mark(name, "changing its parameters"):  # released when the worker ended
        pass
