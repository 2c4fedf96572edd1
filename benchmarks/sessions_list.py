"""The session list of a classroom's owner: p50/p95 of ``GET /api/v1/get_all_sessions`` over many trained
sessions, on loopback. Prints figures; not a test.

    .venv/bin/python benchmarks/sessions_list.py [--sessions 200] [--episodes 700] [--requests 50]
                                                 [--pollers 0]

Makes ``--sessions`` sessions in a temporary home through :class:`rewards_api.store.SessionStore`, each as
a finished training leaves it: env, agent and training parameters (a 30-line reward function), a
training_metrics.json of ``--episodes`` episodes' scores and mean scores, and four evaluated tracks. Then
starts ``rewards-api --home <tmp> serve --port P --token T`` on a free loopback port and asks for the list
``--requests`` times, one request at a time, after three warm-up requests (which fill the server's cache
of parsed documents). With ``--pollers N``, N more clients poll ``get_all_params`` of their own session
meanwhile, as the students' session pages do. Goal: p50 <= 50 ms for 200 sessions of 700 episodes.
Every request goes to 127.0.0.1 only, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from server import V1, start_server  # benchmarks/server.py

from rewards_api.store import SessionStore

GOAL_P50 = 0.050
REWARD_FUNCTION = "def reward_function(params):\n    \"\"\"Stay on the track, fast.\"\"\"\n" + "".join(
    f"    reading_{i} = params['radar'][{i % 5}] * {i + 1}\n" for i in range(28)) + "    return 1.0\n"


def make_sessions(home: Path, count: int, episodes: int) -> list[str]:
    """``count`` trained and evaluated sessions, written as the server and the trainer write them."""
    store, rng = SessionStore(home), random.Random(15)
    evaluated = {"num_trials": 5, "record": 812.5, "mean_score": 640.25, "laps_completed": 3,
                 "mean_progress": 0.83, "total_elapsed_time": 2.3456,
                 "evaluated_at": "2024-05-01 10:00:00.000000"}
    names = [f"student_{number:03d}" for number in range(count)]
    for name in names:
        store.create(name)
        store.write(name, "env_params", {"environment_name": "car-race", "environment_world": 1,
                                         "mode": "training", "car_speed": 20})
        store.write(name, "agent_params", {
            "model_configuration": "[[5, 9], [9, 3]]", "learning_rate": 0.01, "loss_fn": "mse",
            "optimizer": "adam", "gamma": 90, "epsilon": 20, "num_episodes": episodes})
        store.write(name, "training_params", {"learning_algorithm": "dqn", "enable_wandb": False,
                                              "reward_function": REWARD_FUNCTION})
        scores = [round(rng.uniform(-50, 900), 4) for _ in range(episodes)]
        total, means = 0.0, []
        for count_so_far, score in enumerate(scores, 1):
            total += score
            means.append(round(total / count_so_far, 4))
        store.write(name, "training_metrics", {"plot_scores": scores, "plot_mean_scores": means})
        for mode, track in (("training", "1"), ("training", "2"), ("training", "3"), ("evaluation", "1")):
            store.record_evaluation(name, mode, track, evaluated)
    return names


def poll(url: str, token: str, session: str, stop: threading.Event, counts: list[int]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while not stop.is_set():
            client.get(f"{V1}/get_all_params", params={"session_id": session}).raise_for_status()
            counts.append(1)


def measure(url: str, token: str, names: list[str], requests: int, pollers: int) -> None:
    stop, counts = threading.Event(), []
    threads = [threading.Thread(target=poll, args=(url, token, names[number % len(names)], stop, counts))
               for number in range(pollers)]
    latencies = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for _ in range(3):
            warm = client.get(f"{V1}/get_all_sessions")
            warm.raise_for_status()
        listed = warm.json()
        if sorted(listed) != sorted(names):
            raise SystemExit(f"get_all_sessions listed {len(listed)} sessions, not the {len(names)} made")
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        for _ in range(requests):
            began = time.perf_counter()
            client.get(f"{V1}/get_all_sessions").raise_for_status()
            latencies.append(time.perf_counter() - began)
        elapsed = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join()
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"get_all_sessions, {len(names)} sessions, answer {len(warm.content) / 1e6:.2f} MB: "
          f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms "
          f"over {requests} requests (goal: p50 <= {GOAL_P50 * 1000:.0f} ms: "
          f"{'met' if p50 <= GOAL_P50 else 'NOT met'})")
    if pollers:
        print(f"  meanwhile {pollers} pollers got {len(counts) / elapsed:.0f} get_all_params answers/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=700, help="episodes in each training_metrics.json")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--pollers", type=int, default=0, help="clients polling get_all_params meanwhile")
    args = parser.parse_args()
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        started = time.perf_counter()
        names = make_sessions(home, args.sessions, args.episodes)
        print(f"made {len(names)} sessions of {args.episodes} episodes "
              f"in {time.perf_counter() - started:.1f} s")
        process, url = start_server(home, token)
        try:
            measure(url, token, names, args.requests, args.pollers)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
