"""The web lab's pages while trainings run: prints how long each page takes to render, with the server's
trainings idle and then with two trainings running (the 2-core classroom laptop's case).

    .venv/bin/python benchmarks/web_lab.py [--rounds 30]

Starts ``rewards-api serve`` on a free loopback port with a fresh home and five models, signs in the way a
browser does (``/?token=`` then the cookie), and times the full HTML answer of ``/`` (your models: one card
per model, each from the API), ``/new``, ``/leaderboard`` and a training view, ``--rounds`` times each.
The page's later actions go over its websocket and are API calls, measured by ``benchmarks/load.py``.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from server import V1, make_session, start_server

PAGES = ("/", "/new", "/leaderboard", "/models/lab_0/train")


def time_pages(url: str, cookies: httpx.Cookies, rounds: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {page: [] for page in PAGES}
    with httpx.Client(base_url=url, cookies=cookies, timeout=30) as browser:
        for _ in range(rounds):
            for page in PAGES:
                started = time.perf_counter()
                answer = browser.get(page)
                timings[page].append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise SystemExit(f"{page}: {answer.status_code} {answer.text[:200]}")
    return timings


def report(title: str, timings: dict[str, list[float]]) -> None:
    print(title)
    for page, seconds in timings.items():
        ordered = sorted(seconds)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(f"  {page:<22} p50 {statistics.median(ordered) * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms   "
              f"max {ordered[-1] * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    options = parser.parse_args()
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as folder:
        process, url = start_server(Path(folder) / "home", token)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
                for number in range(5):
                    make_session(api, f"lab_{number}", 100_000)
                signed = httpx.get(f"{url}/", params={"token": token})
                cookies = signed.cookies
                time_pages(url, cookies, 2)  # first renders warm the caches (track pictures, imports)
                report("no training", time_pages(url, cookies, options.rounds))
                for number in (0, 1):
                    api.post(f"{V1}/train", params={"session_id": f"lab_{number}"}).raise_for_status()
                time.sleep(5)  # the workers start and learn
                jobs = [job["state"] for job in api.get(f"{V1}/jobs").json()["jobs"]]
                report(f"two trainings ({', '.join(jobs)})", time_pages(url, cookies, options.rounds))
                steps = [api.get(f"{V1}/jobs/lab_{n}").json()["steps"] for n in (0, 1)]
                print(f"  trainings meanwhile: {steps[0]:,} and {steps[1]:,} environment steps")
                for number in (0, 1):
                    api.get(f"{V1}/stop", params={"session_id": f"lab_{number}"})
        finally:
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
