"""The rewards server under load, on loopback: prints latency, frame rates and training throughput.

    .venv/bin/python benchmarks/server.py [--clients 50] [--seconds 10] [--viewers 10]

Starts ``rewards-api serve`` on a free loopback port with a fresh home, then measures
  1. the config endpoints (get_all_params, get_all_sessions, write_env_params, write_agent_params) with
     ``--clients`` concurrent clients for ``--seconds``: requests/s, p50 and p99 latency, errors;
  2. a training watched by ``--viewers`` MJPEG viewers: frames/s each viewer receives (the stream runs
     at the session's car_speed, 30 here);
  3. training throughput (environment steps/s of the worker) without viewers, with the viewers, and
     without again; viewers may cost at most 10 %.
Every request goes to 127.0.0.1 only, is bounded in count and time, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

V1 = "/api/v1"
COMMAND = str(Path(sys.executable).parent / "rewards-api")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(home: Path, token: str, *options: str) -> tuple[subprocess.Popen, str]:
    """``rewards-api --home HOME serve --port P --token TOKEN OPTIONS`` on a free loopback port, with no
    ``REWARDS_*`` setting of this shell (but the radar maps' cache folder); (process, URL) once it answers."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("REWARDS_") or k == "REWARDS_CACHE_DIR"}
    arguments = [COMMAND, "--home", str(home), "serve", "--port", str(port), "--token", token, *options]
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=environment)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start")


def make_session(client: httpx.Client, name: str, episodes: int) -> None:
    client.post(f"{V1}/create_session", params={"session_id": name}).raise_for_status()
    client.post(f"{V1}/write_env_params", json={"session_id": name, "environment_world": 1,
                                                 "car_speed": 30}).raise_for_status()
    client.post(f"{V1}/write_agent_params", json={
        "session_id": name, "model_configuration": "[[5, 9], [9, 3]]", "learning_rate": 0.01,
        "loss_fn": "mse", "optimizer": "adam", "gamma": 90, "epsilon": 20, "num_episodes": episodes,
    }).raise_for_status()


def config_load(url: str, token: str, clients: int, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client_loop(index: int) -> None:
        name = f"load_{clients}_{index}"
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            make_session(client, name, 700)
            calls = [
                lambda: client.get(f"{V1}/get_all_params", params={"session_id": name}),
                lambda: client.get(f"{V1}/get_all_sessions"),
                lambda: client.post(f"{V1}/write_env_params",
                                    json={"session_id": name, "environment_world": 2, "car_speed": 20}),
                lambda: client.post(f"{V1}/write_agent_params", json={
                    "session_id": name, "model_configuration": "[[5, 9], [9, 3]]", "learning_rate": 0.01,
                    "loss_fn": "mse", "optimizer": "adam", "gamma": 0.9, "epsilon": 0.2,
                    "num_episodes": 700}),
            ]
            i = 0
            mine: list[float] = []
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    response = calls[i % len(calls)]()
                    if response.status_code != 200:
                        with lock:
                            errors.append(f"{response.status_code}")
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                mine.append(time.perf_counter() - started)
                i += 1
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    begun = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - begun
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[int(len(ordered) * 0.99)] * 1000
    rate = len(latencies) / elapsed
    print(f"1. config endpoints, {clients} concurrent clients, {seconds:.0f} s: {rate:,.0f} requests/s, "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {len(errors)}")


def watch(url: str, token: str, session: str, seconds: float, counts: list[int]) -> None:
    """A lean viewer: a raw socket that counts MJPEG parts, so that the viewers' own work on this
    machine stays small (in real use they are browsers elsewhere)."""
    host, port = url.removeprefix("http://").split(":")
    marker = b"--frame\r\n"
    frames, tail = 0, b""
    deadline = time.monotonic() + seconds
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        request = (f"GET {V1}/stream?session_id={session}&token={token} HTTP/1.1\r\nHost: {host}\r\n"
                   "Connection: close\r\n\r\n")
        connection.sendall(request.encode())
        while time.monotonic() < deadline:
            chunk = connection.recv(1 << 16)
            if not chunk:
                break
            data = tail + chunk
            frames += data.count(marker)
            tail = data[-(len(marker) - 1):]
    counts.append(frames)


def steps_rate(client: httpx.Client, session: str, seconds: float) -> float:
    first = client.get(f"{V1}/jobs/{session}").json()
    time.sleep(seconds)
    second = client.get(f"{V1}/jobs/{session}").json()
    return (second["steps"] - first["steps"]) / seconds


def training_with_viewers(url: str, token: str, viewers: int, window: float, rounds: int = 3) -> None:
    """Alternate windows without and with viewers: training speed drifts as the policy changes, and
    interleaving cancels the drift out of the comparison."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        make_session(client, "watched", 100_000)
        client.post(f"{V1}/train", params={"session_id": "watched"}).raise_for_status()
        while client.get(f"{V1}/jobs/watched").json().get("steps", 0) < 50_000:  # past start-up, warm-up
            time.sleep(0.5)
        without: list[float] = []
        with_viewers: list[float] = []
        frame_rates: list[float] = []
        for _ in range(rounds):
            time.sleep(3.0)  # let the previous viewers' view wind down
            without.append(steps_rate(client, "watched", window))
            counts: list[int] = []
            threads = [threading.Thread(target=watch, args=(url, token, "watched", window + 2, counts))
                       for _ in range(viewers)]
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            with_viewers.append(steps_rate(client, "watched", window))
            for thread in threads:
                thread.join()
            frame_rates.extend(count / (window + 2) for count in counts)
        client.get(f"{V1}/stop", params={"session_id": "watched"})
    print(f"2. {viewers} viewers of one training: {statistics.mean(frame_rates):.1f} frames/s each "
          f"(min {min(frame_rates):.1f}, max {max(frame_rates):.1f}; the stream runs at 30)")
    base, watched = statistics.mean(without), statistics.mean(with_viewers)
    print(f"3. training throughput over {rounds} alternating {window:.0f} s windows: {base:,.0f} steps/s "
          f"without viewers, {watched:,.0f} with {viewers}: viewers cost {1 - watched / base:.1%} "
          f"(target <= 10 %)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--window", type=float, default=4.0, help="seconds of each throughput window")
    parser.add_argument("--rounds", type=int, default=8, help="alternating without/with viewer rounds")
    args = parser.parse_args()
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as home:
        process, url = start_server(Path(home), token)
        try:
            config_load(url, token, args.clients, args.seconds)
            training_with_viewers(url, token, args.viewers, args.window, args.rounds)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
