"""The reward checks' fork server: checks in forked children, restarted when it dies, gone with the server."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from test_crash import alive, wait_for

from rewards_api.params import ParameterError
from rewards_api.server.reward_check import check_reward_source

GOOD = "def reward_function(params):\n    return 1.0 - params['distance_from_center']\n"
ENDLESS = "def reward_function(params):\n    while True:\n        pass\n"


def children(pid: int) -> set[int]:
    """The processes ``pid`` started that still run (Linux's /proc/PID/task/*/children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return {child for child in found if alive(child)}


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def fork_server_pid(parent: int) -> int:
    """The pid of ``parent``'s reward checks' fork server."""
    return wait_for(lambda: next((pid for pid in children(parent)
                                  if "reward_check_server" in command_line(pid)), None), 30,
                    "the fork server to start")


def test_checks_run_in_children_of_a_fork_server_that_is_restarted_when_it_dies() -> None:
    check_reward_source(GOOD)
    first = fork_server_pid(os.getpid())
    with pytest.raises(ParameterError, match="line 2"):
        check_reward_source("def reward_function(params):\n    return params['nope']\n")
    assert fork_server_pid(os.getpid()) == first  # one fork server for every check

    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not alive(first), 10, "the fork server to die")
    check_reward_source(GOOD)  # a new one starts: the check still answers
    second = fork_server_pid(os.getpid())
    assert second != first
    with pytest.raises(ParameterError, match="returned nan"):
        check_reward_source("def reward_function(params):\n    return float('nan')\n")


def test_checks_at_once_all_get_their_own_answer() -> None:
    sources = {f"v{i}": f"def reward_function(params):\n    return {i}\n" if i % 2 else
               f"def reward_function(params):\n    return 'v{i}'\n" for i in range(6)}
    answers: dict[str, str] = {}

    def check(name: str) -> None:
        try:
            check_reward_source(sources[name])
            answers[name] = "ok"
        except ParameterError as exc:
            answers[name] = str(exc)

    threads = [threading.Thread(target=check, args=(name,)) for name in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(answers) == set(sources)
    for i in range(6):
        answer = answers[f"v{i}"]
        if i % 2:
            assert answer == "ok", (i, answer)
        else:
            assert "it must return a number" in answer, (i, answer)


def test_a_check_past_its_time_out_is_refused_and_its_child_killed() -> None:
    check_reward_source(GOOD)
    server = fork_server_pid(os.getpid())
    started = time.monotonic()
    # One C operation: only the kernel's CPU budget (3 s of CPU time) or a kill can end it.
    with pytest.raises(ParameterError, match=r"did not return within 0\.5 s"):
        check_reward_source("def reward_function(params):\n    return sum(range(10**12))\n", timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert children(server), "the child should still run at the client's time-out"
    # The fork server kills it 1 s (KILL_GRACE) past its time-out: before it can have used 3 s of CPU.
    wait_for(lambda: not children(server), 2.7 - (time.monotonic() - started), "the child to be killed")
    check_reward_source(GOOD)


def test_the_fork_server_ends_with_the_server_even_after_kill_9(tmp_path: Path, launch) -> None:
    server = launch(tmp_path / "home", "--no-auth")
    pid = fork_server_pid(server.process.pid)  # started with the server, before any check
    with server.client(None) as client:
        assert client.post("/api/v1/create_session", params={"session_id": "s"}).status_code == 200
        answer = client.post("/api/v1/write_reward_fn", json={"session_id": "s", "reward_function": ENDLESS})
        assert answer.status_code == 422 and "more than 1 s of CPU" in answer.json()["message"]
        assert fork_server_pid(server.process.pid) == pid
    server.process.kill()
    server.process.wait()
    wait_for(lambda: not alive(pid), 10, "the fork server to exit after the server was killed")
