"""How soon things start: a training after POST /train, a live frame, an evaluation's results, the command
line, the session list, and a classroom pressing Train at once. Prints each figure beside its goal; not a
test.

    .venv/bin/python benchmarks/startup.py [--runs 10] [--classroom 30] [--no-classroom] [--sessions 200]
                                           [--classroom-only] [--max-jobs N]

1. The command line on a home of 50 sessions: ``rewards-api --help``, ``sessions``, ``info``,
   ``leaderboard`` (median of 5 runs after one to warm the disk cache; goals 0.3 s and 0.6 s), and two that
   fail at once: ``train nosuch``, ``evaluate nosuch``.
2. A server (``rewards-api --home <tmp> serve`` on a free loopback port) whose owner has ``--sessions``
   sessions, each with a 700-episode chart: ``GET /api/v1/get_all_sessions`` p50/p95 over 40 requests
   (goal p50 <= 50 ms).
3. Two trainings run in the background the whole time; then ``--runs`` times: a new session with the
   original UI's defaults (track 1, 700 episodes, ``[[5, 9], [9, 3]]``, +1 while alive), ``POST /train``,
   and ``GET /api/v1/jobs/<id>`` polled every 5 ms: the worker has *started* (it takes its first step next)
   when the job shows its episode target, and its first episode is done when it shows steps; then it is
   stopped (goals: started p50 <= 1 s, p95 <= 2 s). Then 5 times: ``GET /api/v1/stream`` (which starts the
   training) until the end of the first JPEG (goal 1.5 s). Then a trained session's evaluation, 5 trials on
   training track 1 and on the evaluation track: ``POST /api/v1/evaluate`` until the response starts (the
   results are recorded before the replay streams; goal 1 s).
4. Unless ``--no-classroom``: a new server, ``--classroom`` users each with a session of the original UI's
   defaults, all pressing Train at the same moment; meanwhile each user's page asks for its session's
   parameters (``get_all_params``) and the jobs every second. Printed: the time until every training has
   finished (goal 3 min), how many of the models then lap their track (an evaluation of 5 trials each),
   and the config requests' p50/p99 latency throughout (goal p99 < 50 ms), sent on raw HTTP/1.1
   connections as benchmarks/load.py does (httpx's CPU time would be most of what is measured).

Every request goes to 127.0.0.1 only. The radar maps' disk cache (``~/.cache/rewards-api``) is used as a
server would use it: the first run on a new machine measures the built-in tracks once (a second or two
each), later runs read them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from load import LeanBrowser  # benchmarks/load.py: a browser's requests on a raw connection
from server import COMMAND, V1, start_server  # benchmarks/server.py

from rewards_api.params import AgentParams, EnvParams, TrainingParams
from rewards_api.store import SessionStore
from rewards_api.users import UserRegistry

LONG = 100_000


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REWARDS_") or k == "REWARDS_CACHE_DIR"}


def start(home: Path, token: str, max_jobs: int | None) -> tuple[subprocess.Popen, str]:
    return start_server(home, token, *(["--max-jobs", str(max_jobs)] if max_jobs is not None else []))


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figure(label: str, seconds: float, goal: float | None = None, unit: str = "s") -> None:
    shown = f"{seconds * 1000:.0f} ms" if unit == "ms" else f"{seconds:.2f} s"
    if goal is None:
        print(f"  {label:<58} {shown:>10}")
        return
    goal_shown = f"{goal * 1000:.0f} ms" if unit == "ms" else f"{goal:g} s"
    print(f"  {label:<58} {shown:>10}   goal <= {goal_shown:<7} {'met' if seconds <= goal else 'MISSED'}")


def fill_home(home: Path, count: int, prefix: str = "s") -> list[str]:
    """``count`` sessions with the original UI's defaults, each with the training metrics of a 700-episode
    run (the lists the chart draws), written through the store (no server)."""
    store = SessionStore(home)
    names = [f"{prefix}{index:03d}" for index in range(count)]
    scores = [float((episode * 37) % 300) for episode in range(700)]
    means = [sum(scores[: i + 1]) / (i + 1) for i in range(len(scores))]
    for name in names:
        store.create(name)
        store.write_env_params(name, EnvParams())
        store.write_agent_params(name, AgentParams())
        store.write_training_params(name, TrainingParams())
        store.write(name, "training_metrics", {"plot_scores": scores, "plot_mean_scores": means})
    return names


# ----- 1. the command line ---------------------------------------------------------------------------------


def command_line() -> None:
    print("The command line, 50 sessions (median of 5 runs):")
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        names = fill_home(home, 50)
        commands = [
            ("rewards-api --help", ["--help"], 0.3),
            ("rewards-api sessions", ["--home", str(home), "sessions"], 0.6),
            ("rewards-api info s000", ["--home", str(home), "info", names[0]], 0.6),
            ("rewards-api leaderboard", ["--home", str(home), "leaderboard"], 0.6),
            ("rewards-api train nosuch (an error)", ["--home", str(home), "train", "nosuch"], 0.6),
            ("rewards-api evaluate nosuch (an error)", ["--home", str(home), "evaluate", "nosuch"], 0.6),
        ]
        for label, arguments, goal in commands:
            times = []
            for attempt in range(6):
                started = time.perf_counter()
                subprocess.run([COMMAND, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=environment(), check=False)
                if attempt:
                    times.append(time.perf_counter() - started)
            figure(label, statistics.median(times), goal)


# ----- 2 and 3. one server ---------------------------------------------------------------------------------


def session_list(url: str, token: str, sessions: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        times = []
        for attempt in range(41):
            started = time.perf_counter()
            answer = client.get(f"{V1}/get_all_sessions")
            answer.raise_for_status()
            if attempt:  # the first fills the server's cache of parsed documents
                times.append(time.perf_counter() - started)
        assert len(answer.json()) >= sessions
    print(f"The session list, {sessions} sessions of one owner (40 requests):")
    figure("get_all_sessions p50", statistics.median(times), 0.05, "ms")
    figure("get_all_sessions p95", percentile(times, 0.95), None, "ms")


def create(client: httpx.Client, name: str, episodes: int = 700) -> None:
    client.post(f"{V1}/create_session", params={"session_id": name}).raise_for_status()
    client.post(f"{V1}/write_agent_params", json={"session_id": name, **AgentParams(num_episodes=episodes)
                                                  .model_dump()}).raise_for_status()


def job(client: httpx.Client, name: str) -> dict[str, Any]:
    answer = client.get(f"{V1}/jobs/{name}")
    return answer.json() if answer.status_code == 200 else {}


def wait_for(client: httpx.Client, name: str, check: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job(client, name)
        if status and check(status):
            return status
        time.sleep(0.005)
    raise SystemExit(f"session {name}: timed out (last status {status})")


def stop_and_wait(client: httpx.Client, name: str) -> None:
    client.get(f"{V1}/stop", params={"session_id": name}).raise_for_status()
    wait_for(client, name, lambda status: status["state"] not in ("queued", "running"))


def training_starts(url: str, token: str, runs: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for name in ("busy_a", "busy_b"):
            create(client, name, LONG)
            client.post(f"{V1}/train", params={"session_id": name}).raise_for_status()
        for name in ("busy_a", "busy_b"):
            wait_for(client, name, lambda status: status["steps"] > 0)
        started, first_episode = [], []
        for run in range(runs):
            name = f"start_{run:02d}"
            create(client, name)
            began = time.perf_counter()
            client.post(f"{V1}/train", params={"session_id": name}).raise_for_status()
            wait_for(client, name, lambda status: status["episodes"] > 0)
            started.append(time.perf_counter() - began)
            wait_for(client, name, lambda status: status["steps"] > 0)
            first_episode.append(time.perf_counter() - began)
            stop_and_wait(client, name)
        print(f"POST /train until the worker starts its first step, two trainings running ({runs} runs):")
        figure("started p50", statistics.median(started), 1.0)
        figure("started p95", percentile(started, 0.95), 2.0)
        figure("started max", max(started))
        figure("first episode done p50", statistics.median(first_episode))

        frames = []
        for run in range(5):
            name = f"view_{run}"
            create(client, name)
            began = time.perf_counter()
            with client.stream("GET", f"{V1}/stream", params={"session_id": name, "token": token}) as answer:
                answer.raise_for_status()
                received = b""
                for chunk in answer.iter_bytes():
                    received += chunk
                    if b"\xff\xd9" in received[received.find(b"\xff\xd8"):]:
                        break
            frames.append(time.perf_counter() - began)
            stop_and_wait(client, name)
        print("GET /stream (it starts the training) until its first frame (5 runs):")
        figure("first live frame p50", statistics.median(frames), 1.5)
        figure("first live frame max", max(frames))

        create(client, "evaluated", 150)
        client.post(f"{V1}/train", params={"session_id": "evaluated"}).raise_for_status()
        wait_for(client, "evaluated", lambda status: status["state"] == "finished")
        print("POST /evaluate until its results (5 trials; 5 runs each), two trainings running:")
        for mode in ("training", "evaluation"):
            times = []
            for _ in range(5):
                began = time.perf_counter()
                body = {"session_id": "evaluated", "mode": mode, "track_num": "1", "num_trials": 5}
                with client.stream("POST", f"{V1}/evaluate", json=body) as answer:
                    answer.raise_for_status()
                    times.append(time.perf_counter() - began)
            figure(f"evaluation on {mode} track 1 p50", statistics.median(times), 1.0)
        for name in ("busy_a", "busy_b"):
            stop_and_wait(client, name)


# ----- 4. a classroom --------------------------------------------------------------------------------------


async def classroom(url: str, home: Path, owner_token: str, count: int) -> None:
    registry = UserRegistry(home)
    tokens = [registry.add(f"student{index:02d}") for index in range(count)]
    session = "my_car"
    latencies: list[float] = []
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 limits=httpx.Limits(max_connections=count + 4)) as client:
        async def call(token: str, method: str, path: str, **options: Any) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return await client.request(method, path, headers=headers, **options)

        for token in tokens:
            made = await call(token, "POST", f"{V1}/create_session", params={"session_id": session})
            made.raise_for_status()

        async def page(token: str) -> None:  # what a student's open page asks while it trains
            browser = LeanBrowser(url, token)  # raw HTTP/1.1: httpx's own CPU time would skew the figures
            try:
                while not done.is_set():
                    for path, params in (("get_all_params", {"session_id": session}), ("jobs", {})):
                        began = time.perf_counter()
                        status = await browser.send("GET", path, {"params": params})
                        latencies.append(time.perf_counter() - began)
                        assert status == 200, (path, status)
                    await asyncio.sleep(1.0)
            finally:
                await browser.close()

        pages = [asyncio.create_task(page(token)) for token in tokens]
        began = time.perf_counter()
        answers = await asyncio.gather(*(call(token, "POST", f"{V1}/train", params={"session_id": session})
                                         for token in tokens))
        for answer in answers:
            answer.raise_for_status()
        owner = {"Authorization": f"Bearer {owner_token}"}
        while True:
            jobs = (await client.get(f"{V1}/jobs", headers=owner)).json()["jobs"]
            if len(jobs) == count and all(job["state"] not in ("queued", "running") for job in jobs):
                break
            await asyncio.sleep(0.25)
        finished = time.perf_counter() - began
        done.set()
        await asyncio.gather(*pages)
        states = [job["state"] for job in jobs]

        laps = 0
        for token in tokens:
            async with client.stream("POST", f"{V1}/evaluate", headers={"Authorization": f"Bearer {token}"},
                                     json={"session_id": session, "mode": "training", "track_num": "1",
                                           "num_trials": 5}) as answer:
                answer.raise_for_status()
            params = (await call(token, "GET", f"{V1}/get_all_params", params={"session_id": session})).json()
            laps += params["evaluation_metrics"]["training"]["1"]["laps_completed"] > 0
    print(f"A classroom: {count} users press Train on the original UI's defaults at once (one server):")
    figure("until every model has finished", finished, 180.0)
    print(f"  {'jobs finished':<58} {states.count('finished'):>10} of {count}")
    print(f"  {'models that lap their track (5 greedy trials)':<58} {laps:>10} of {count}")
    figure("config requests p50 meanwhile", statistics.median(latencies), None, "ms")
    figure("config requests p99 meanwhile", percentile(latencies, 0.99), 0.05, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="trainings started one after another")
    parser.add_argument("--sessions", type=int, default=200, help="sessions of the owner to list")
    parser.add_argument("--classroom", type=int, default=30, help="users pressing Train at once")
    parser.add_argument("--no-classroom", action="store_true")
    parser.add_argument("--classroom-only", action="store_true")
    parser.add_argument("--max-jobs", type=int, help="the servers' --max-jobs (default: theirs)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; python {sys.version.split()[0]}\n")
    token = secrets.token_urlsafe(16)
    if not args.classroom_only:
        one_server(args, token)
    if not args.no_classroom:
        with tempfile.TemporaryDirectory() as folder:
            home = Path(folder)
            process, url = start(home, token, args.max_jobs)
            try:
                asyncio.run(classroom(url, home, token, args.classroom))
            finally:
                stop_server(process)


def one_server(args: argparse.Namespace, token: str) -> None:
    command_line()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        fill_home(home, args.sessions, "listed")
        process, url = start(home, token, args.max_jobs)
        try:
            session_list(url, token, args.sessions)
            training_starts(url, token, args.runs)
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
