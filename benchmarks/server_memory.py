"""The server's memory over create / train / stop / delete rounds with a big network (issue 14, finding 9).

    .venv/bin/python benchmarks/server_memory.py [--rounds 4] [--seconds 8] [--layers JSON]

Starts ``rewards-api serve`` on a free loopback port with a fresh home; each round creates a session with
``--layers`` (default: the biggest network the server accepts), trains it for ``--seconds`` while a viewer
watches its live stream, stops it, waits for the job to end, deletes the session, and prints the
server's resident memory (VmRSS of its process). Then tries the issue's 15-layer network and prints the
answer. Only 127.0.0.1 is contacted; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

V1 = "/api/v1"
ISSUE_NETWORK = [[5, 1024]] + [[1024, 1024]] * 14 + [[1024, 3]]
ALLOWED_NETWORK = [[5, 1024], [1024, 1024], [1024, 3]]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def watch(url: str, token: str, session: str, seconds: float) -> None:
    """Read the live MJPEG stream for ``seconds`` (the server then draws with the job's weights)."""
    deadline = time.monotonic() + seconds
    try:
        with httpx.stream("GET", f"{url}{V1}/stream", params={"session_id": session, "start": "false",
                                                              "token": token}, timeout=30) as response:
            for _ in response.iter_bytes():
                if time.monotonic() > deadline:
                    return
    except httpx.HTTPError:
        return


def one_round(client: httpx.Client, url: str, token: str, number: int, layers: list[list[int]],
              seconds: float) -> None:
    session = f"mem_{number}"
    client.post(f"{V1}/create_session", params={"session_id": session}).raise_for_status()
    client.post(f"{V1}/write_agent_params", json={
        "session_id": session, "model_configuration": json.dumps(layers), "num_episodes": 100000,
    }).raise_for_status()
    client.post(f"{V1}/train", params={"session_id": session}).raise_for_status()
    viewer = threading.Thread(target=watch, args=(url, token, session, seconds))
    viewer.start()
    viewer.join()
    client.get(f"{V1}/stop", params={"session_id": session}).raise_for_status()
    deadline = time.monotonic() + 60
    while client.get(f"{V1}/jobs/{session}").json().get("state") in ("queued", "running"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{session} did not stop")
        time.sleep(0.2)
    client.post(f"{V1}/delete_session", params={"session_id": session}).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--layers", type=json.loads, default=ALLOWED_NETWORK)
    arguments = parser.parse_args()
    token = secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = str(Path(sys.executable).parent / "rewards-api")
    with tempfile.TemporaryDirectory() as home:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}
        server = subprocess.Popen([command, "--home", home, "serve", "--port", str(port), "--token", token],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        client.get("/health").raise_for_status()
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                time.sleep(2)
                parameters = sum((a + 1) * b for a, b in arguments.layers)
                print(f"network of {len(arguments.layers)} layers, {parameters:,} parameters")
                print(f"server RSS at start: {rss_mb(server.pid):.0f} MB")
                for number in range(1, arguments.rounds + 1):
                    one_round(client, url, token, number, arguments.layers, arguments.seconds)
                    time.sleep(1)
                    print(f"after round {number}: {rss_mb(server.pid):.0f} MB")
                client.post(f"{V1}/create_session", params={"session_id": "mem_issue"})
                answer = client.post(f"{V1}/write_agent_params", json={
                    "session_id": "mem_issue", "model_configuration": json.dumps(ISSUE_NETWORK)})
                message = answer.json().get("message", "")
                print(f"the issue's 16-layer network: {answer.status_code} {message}")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
