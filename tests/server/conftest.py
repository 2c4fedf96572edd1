"""A real rewards server (``rewards-api serve``) on a loopback port, and clients for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

COMMAND = str(Path(sys.executable).parent / "rewards-api")
TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> set[int]:
    """The child processes of every thread of ``pid`` (Linux); none once it is gone."""
    found: set[int] = set()
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.update(int(child) for child in (task / "children").read_text().split())
    except FileNotFoundError:
        pass
    return found


def fork_servers(server_pid: int) -> set[int]:
    """The server's children running ``multiprocessing.forkserver`` (see rewards_api.runs.processes)."""
    found: set[int] = set()
    for child in children(server_pid):
        try:
            if b"multiprocessing.forkserver" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except FileNotFoundError:
            continue
    return found


def forked_children(server_pid: int) -> set[int]:
    """The server's training workers and evaluation children: the children of its fork server."""
    return {pid for forker in fork_servers(server_pid) for pid in children(forker)}


def niceness(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    except (FileNotFoundError, IndexError, ValueError):
        return None


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen
    output: Path

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(home: Path, *args: str, env: dict[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> Server:
    """``rewards-api --home HOME serve ARGS`` on a free loopback port; ``preexec_fn`` runs in the child
    before it starts (to set resource limits)."""
    port = free_port()
    output = home.parent / f"server-{port}.log"
    log = output.open("w")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}
    # The workers' fork server starts at the first training: most of these servers never train, and its
    # ~3 s of CPU at every start would be most of the suite's (tests/server/test_worker_start.py: both ways).
    environment["REWARDS_PRELOAD_WORKERS"] = "0"
    process = subprocess.Popen([COMMAND, "--home", str(home), "serve", "--port", str(port), *args],
                               stdout=log, stderr=subprocess.STDOUT, env={**environment, **(env or {})},
                               preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {output.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Server(url, home, process, output)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the server did not start: {output.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("server") / "home", "--token", TOKEN)
    yield running
    stop_server(running)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[callable]:
    """Start more servers (``launch(home, *serve_args)``); each is stopped after the test."""
    started: list[Server] = []

    def start(home: Path, *args: str, preexec_fn: Callable[[], None] | None = None) -> Server:
        started.append(start_server(home, *args, preexec_fn=preexec_fn))
        return started[-1]

    yield start
    for running in started:
        stop_server(running)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
