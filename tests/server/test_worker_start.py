"""A real server's training workers: forked from a fork server that the server starts with itself (the
default) or at the first training (REWARDS_PRELOAD_WORKERS=0), and a training that starts at once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import TOKEN, fork_servers, forked_children, start_server, stop_server

V1 = "/api/v1"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled(pid: int) -> bool:
    """The process has used CPU (its preloading) and then none for half a second (it waits to fork)."""
    before = cpu_seconds(pid)
    time.sleep(0.5)
    return before > 0.5 and cpu_seconds(pid) == before


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_the_fork_server_starts_with_the_server_and_a_training_starts_at_once(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "--token", TOKEN, env={"REWARDS_PRELOAD_WORKERS": "1"})
    try:
        forker = wait_for(lambda: fork_servers(server.process.pid))  # before anyone asked for a training
        with server.client() as api:
            assert api.post(f"{V1}/create_session", params={"session_id": "quick"}).status_code == 200
            wait_for(lambda: settled(next(iter(forker))), timeout=60)  # it has loaded PyTorch and the tracks
            began = time.monotonic()
            assert api.post(f"{V1}/train", params={"session_id": "quick"}).status_code == 200
            wait_for(lambda: api.get(f"{V1}/jobs/quick").json()["episodes"] > 0)  # the worker has started
            assert time.monotonic() - began < 3.0  # a spawned worker took 9-12 s here; a fork, a fraction
            assert forked_children(server.process.pid)  # the worker is the fork server's child
            assert fork_servers(server.process.pid) == forker
            api.get(f"{V1}/stop", params={"session_id": "quick"})
    finally:
        stop_server(server)


def test_without_preloading_the_fork_server_starts_at_the_first_training(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", "--token", TOKEN)  # as the tests' servers: preload off
    try:
        with server.client() as api:
            assert api.post(f"{V1}/create_session", params={"session_id": "later"}).status_code == 200
            time.sleep(1.0)
            assert not fork_servers(server.process.pid)
            assert api.post(f"{V1}/train", params={"session_id": "later"}).status_code == 200
            wait_for(lambda: fork_servers(server.process.pid))
            wait_for(lambda: api.get(f"{V1}/jobs/later").json()["steps"] > 0)
            api.get(f"{V1}/stop", params={"session_id": "later"})
    finally:
        stop_server(server)
