"""A classroom on one server: students' browsers on the config endpoints while two trainings run, then
viewers on a live stream. Prints figures; not a test.

    .venv/bin/python benchmarks/load.py [--clients 200] [--duration 30] [--think 0.5 1.5] [--viewers 20]
                                        [--view-seconds 10] [--no-training] [--httpx] [--owner]
                                        [--reward-share 0.01] [--baseline 10]

Starts ``rewards-api --home <tmp> serve --port P --token T`` on a free loopback port, then:

1. Unless ``--no-training``: two sessions train (``POST /api/v1/train``, 100 000 episodes each, so they run
   the whole time); their speed (episodes/s and environment steps/s, from ``GET /api/v1/jobs``) is
   measured alone for ``--baseline`` seconds first.
2. ``--clients`` students, each one browser: one HTTP connection (raw HTTP/1.1 on an asyncio connection;
   ``--httpx``: an ``httpx.AsyncClient`` limited to one connection), one request at a time, then a think
   time drawn uniformly from ``--think`` seconds. Each student is a user of the server with a token and a
   session of their own (``--owner``: everyone uses the owner's token, and get_all_sessions lists all
   their sessions). The mix is mostly reads: see ``MIX``; ``--reward-share`` of the requests save a reward
   function (write_training_params, which checks it in a child process). For ``--duration`` seconds;
   meanwhile ``/api/v1/jobs`` is polled to check that both trainings stay ``running`` and to measure
   their speed under load. Printed: requests/s, p50/p90/p99/max latency, overall and by endpoint, and
   errors (non-2xx or an exception) by endpoint and status, with the targets: zero errors, p99 < 50 ms.
3. Unless ``--no-training`` (or ``--viewers 0``): ``--viewers`` MJPEG viewers of one training
   (``GET /api/v1/stream?session_id=...&token=...``) for ``--view-seconds``: JPEG frames per second each
   viewer receives from its first frame on (min/median/max; the stream runs at the session's car_speed,
   30 here), and both trainings' speed while viewed against unviewed windows just before and after.

Every phase prints the cores used by the server, its reward-check children, the training workers, this
load generator, and anything else on the machine: the 2 cores are shared, and another job running at the
same time skews every figure (a warning says so). Start it on a quiet machine.

Why asyncio and not threads: 200 mostly idle clients are 200 coroutines in one event loop, cheap for the
machine that also runs the server (threads would add 200 stacks and GIL switches to what is measured).
The students' browsers speak HTTP/1.1 on raw connections by default, at a tenth of httpx's CPU time. With
``--httpx`` the load generator takes over half a core (2.5 ms of CPU a request, from the server's 2 cores)
and its own delays dominate the figures: p99 ~400 ms even with no training, while the server, a third of a
core busy, answers the same requests within 20 ms for the raw connections.
Every request goes to 127.0.0.1 only, the run is bounded in time, and the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from rewards_api.users import UserRegistry

sys.path.insert(0, str(Path(__file__).parent))
from server import start_server

V1 = "/api/v1"
TRAINING_SESSIONS = ("class_demo_1", "class_demo_2")
STUDENT_SESSION = "my_car"
REWARD = ("def reward_function(params):\n"
          "    if not params['is_alive']:\n"
          "        return 0.0\n"
          "    return 1.0 - params['distance_from_center'] / params['track_width']\n")
LAYERS = "[[5, 9], [9, 3]]"

MIX: dict[str, float] = {
    "get_all_params": 40,  # the session page polls its session
    "get_all_sessions": 8,  # the session list, on (re)load
    "final_eval_score": 10,
    "get_all_envs": 5,
    "get_all_tracks": 5,
    "write_env_params": 15,  # track or speed changed
    "write_agent_params": 7,  # a hyper-parameter changed (starts a new model: students' own sessions only)
}
"""Relative weights of the config requests a student's browser sends (write_training_params is added
with --reward-share)."""

P99_TARGET_MS = 50.0
WARM_UP = 1.0
"""Seconds of a stream a viewer does not count, after its first frame."""


# ----- the server ------------------------------------------------------------------------------------------
def machine_cpu() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far, over all cores (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / ticks, sum(values) / ticks


def busy_cores(seconds: float = 2.0) -> float:
    """Cores in use on the machine over ``seconds``: other work skews every figure."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return (busy1 - busy0) / max(total1 - total0, 1e-9) * (os.cpu_count() or 1)


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of process ``pid`` (all its threads), or (``children``) of its children that
    have ended (the server's reward checks); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU used over a phase by the machine, the server, the training workers and this process."""

    server_pid: int
    worker_pids: list[int]
    start: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {"wall": time.monotonic(), "machine": machine_cpu()[0], "server": cpu_seconds(self.server_pid),
                "checks": cpu_seconds(self.server_pid, children=True),
                "workers": sum(cpu_seconds(pid) for pid in self.worker_pids),
                "generator": own.ru_utime + own.ru_stime}

    def begin(self) -> None:
        self.start = self._now()

    def cores(self) -> dict[str, float]:
        """Cores used by each since :meth:`begin`; ``other`` is the rest of the machine (it should be ~0)."""
        end = self._now()
        wall = end["wall"] - self.start["wall"]
        used = {name: (end[name] - self.start[name]) / wall for name in end if name != "wall"}
        used["other"] = (used["machine"] - used["server"] - used["checks"] - used["workers"]
                         - used["generator"])
        return used


def cores_line(cores: dict[str, float]) -> str:
    warning = "  (WARNING: other work skews these figures)" if cores["other"] > 0.2 else ""
    checks = f", its reward checks {cores['checks']:.2f}" if cores["checks"] > 0.005 else ""
    return (f"cores used: server {cores['server']:.2f}{checks}, training workers {cores['workers']:.2f}, "
            f"this load generator {cores['generator']:.2f}, anything else {cores['other']:.2f}{warning}")


# ----- measurements ----------------------------------------------------------------------------------------
@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, endpoint: str, latency: float, error: str | None) -> None:
        self.latencies[endpoint].append(latency)
        if error is not None:
            self.errors[(endpoint, error)] += 1

    def all(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return "no requests"
    p50, p90, p99 = (percentile(ordered, f) * 1000 for f in (0.50, 0.90, 0.99))
    return f"p50 {p50:6.1f}  p90 {p90:6.1f}  p99 {p99:6.1f}  max {ordered[-1] * 1000:7.1f} ms"


@dataclass
class JobSample:
    at: float
    jobs: dict[str, dict[str, Any]]


def speed(first: JobSample, last: JobSample, session: str) -> tuple[float, float]:
    """Episodes/s and steps/s of ``session`` between two samples."""
    seconds = last.at - first.at
    a, b = first.jobs[session], last.jobs[session]
    return (b["episode"] - a["episode"]) / seconds, (b["steps"] - a["steps"]) / seconds


async def sample_jobs(client: httpx.AsyncClient) -> JobSample:
    for attempt in range(3):  # a kept-alive connection the server closed meanwhile: ask again
        try:
            answer = (await client.get(f"{V1}/jobs")).raise_for_status().json()
            break
        except httpx.TransportError:
            if attempt == 2:
                raise
    return JobSample(time.monotonic(), {job["session_id"]: job for job in answer["jobs"]
                                        if job.get("user") is None})


async def watch_jobs(client: httpx.AsyncClient, stop: asyncio.Event, every: float = 1.0) -> list[JobSample]:
    samples = [await sample_jobs(client)]
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        samples.append(await sample_jobs(client))
    return samples


# ----- setup -----------------------------------------------------------------------------------------------
@dataclass
class Student:
    token: str
    session: str


def agent_params(session: str, episodes: int, rng: random.Random | None = None) -> dict[str, Any]:
    rate = rng.choice((0.001, 0.005, 0.01, 0.05)) if rng else 0.01
    return {"session_id": session, "model_configuration": LAYERS, "learning_rate": rate, "loss_fn": "mse",
            "optimizer": "adam", "gamma": 0.9, "epsilon": 20, "num_episodes": episodes}


async def make_session(client: httpx.AsyncClient, session: str, episodes: int) -> None:
    (await client.post(f"{V1}/create_session", params={"session_id": session})).raise_for_status()
    (await client.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 1,
                                                        "car_speed": 30})).raise_for_status()
    (await client.post(f"{V1}/write_agent_params", json=agent_params(session, episodes))).raise_for_status()


async def make_students(url: str, home: Path, owner_token: str, count: int, owner: bool) -> list[Student]:
    """Users (unless ``owner``) and one session each, made 20 at a time."""
    if owner:
        students = [Student(owner_token, f"student_{index:03d}") for index in range(count)]
    else:
        registry = UserRegistry(home)  # the server reloads the users file when it changes
        students = [Student(registry.add(f"student{index:03d}"), STUDENT_SESSION) for index in range(count)]
    gate = asyncio.Semaphore(20)

    async def make(student: Student) -> None:
        async with gate, httpx.AsyncClient(base_url=url, timeout=60,
                                           headers={"Authorization": f"Bearer {student.token}"}) as client:
            await make_session(client, student.session, 700)

    await asyncio.gather(*(make(student) for student in students))
    return students


# ----- the students --------------------------------------------------------------------------------------
Request = tuple[str, str, dict[str, Any]]


def requests_of(session: str) -> dict[str, Callable[[random.Random], Request]]:
    return {
        "get_all_params": lambda rng: ("GET", "get_all_params", {"params": {"session_id": session}}),
        "get_all_sessions": lambda rng: ("GET", "get_all_sessions", {}),
        "final_eval_score": lambda rng: ("GET", "final_eval_score", {"params": {"session_id": session}}),
        "get_all_envs": lambda rng: ("GET", "get_all_envs", {}),
        "get_all_tracks": lambda rng: ("GET", "get_all_tracks", {}),
        "write_env_params": lambda rng: ("POST", "write_env_params", {"json": {
            "session_id": session, "environment_name": "car-race", "environment_world": rng.randint(1, 3),
            "mode": "training", "car_speed": rng.choice((20, 30, 40))}}),
        "write_agent_params": lambda rng: ("POST", "write_agent_params", {"json": agent_params(session, 700,
                                                                                             rng)}),
        "write_training_params": lambda rng: ("POST", "write_training_params", {"json": {
            "session_id": session, "learning_algorithm": "dqn", "enable_wandb": False,
            "reward_function": REWARD}}),
    }


class Browser:
    """One student's browser: one keep-alive connection, one request at a time."""

    async def send(self, method: str, path: str, arguments: dict[str, Any]) -> int:
        """The answer's status once its body has been read; an exception if there is none."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class HttpxBrowser(Browser):
    def __init__(self, url: str, token: str) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.client = httpx.AsyncClient(base_url=f"{url}{V1}/", limits=limits, timeout=30,
                                        headers={"Authorization": f"Bearer {token}"})

    async def send(self, method: str, path: str, arguments: dict[str, Any]) -> int:
        response = await self.client.request(method, path, **arguments)
        await response.aread()
        return response.status_code

    async def close(self) -> None:
        await self.client.aclose()


class LeanBrowser(Browser):
    """HTTP/1.1 over a raw asyncio connection: a tenth of httpx's CPU time a request, so that the load
    generator takes less of the cores the server is measured on. Reconnects once when the server has
    closed a kept-alive connection, as browsers do."""

    def __init__(self, url: str, token: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, method: str, path: str, arguments: dict[str, Any]) -> int:
        target = f"{V1}/{path}"
        if arguments.get("params"):
            target += "?" + urlencode(arguments["params"])
        body = json.dumps(arguments["json"]).encode() if "json" in arguments else b""
        head = (f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
                + ("Content-Type: application/json\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n")
        for attempt in (1, 2):
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(head.encode() + body)
                lines = (await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 30)).split(b"\r\n")
                headers = dict(line.lower().split(b": ", 1) for line in lines[1:] if b": " in line)
                await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
                if headers.get(b"connection") == b"close":
                    await self.close()
                return int(lines[0].split()[1])
            except (asyncio.IncompleteReadError, ConnectionError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def student_browser(url: str, student: Student, mix: dict[str, float], think: tuple[float, float],
                          deadline: float, seed: int, results: Results, lean: bool) -> None:
    rng = random.Random(seed)
    names, weights = list(mix), list(mix.values())
    build = requests_of(student.session)
    browser = LeanBrowser(url, student.token) if lean else HttpxBrowser(url, student.token)
    try:
        await asyncio.sleep(rng.uniform(0, think[1]))  # students do not all click at the same instant
        while time.monotonic() < deadline:
            endpoint = rng.choices(names, weights)[0]
            method, path, arguments = build[endpoint](rng)
            error: str | None = None
            started = time.perf_counter()
            try:
                status = await browser.send(method, path, arguments)
                if not 200 <= status < 300:
                    error = str(status)
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                error = type(exc).__name__
            results.record(endpoint, time.perf_counter() - started, error)
            await asyncio.sleep(rng.uniform(*think))
    finally:
        await browser.close()


async def config_load(url: str, owner: httpx.AsyncClient, students: list[Student], mix: dict[str, float],
                      think: tuple[float, float], duration: float, training: bool, meter: CpuMeter,
                      lean: bool) -> None:
    results = Results()
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_jobs(owner, stop)) if training else None
    meter.begin()
    begun = time.monotonic()
    deadline = begun + duration
    await asyncio.gather(*(student_browser(url, student, mix, think, deadline, index, results, lean)
                           for index, student in enumerate(students)))
    elapsed = time.monotonic() - begun
    cores = meter.cores()
    stop.set()
    everything = results.all()
    errors = sum(results.errors.values())
    p99 = percentile(sorted(everything), 0.99) * 1000 if everything else float("nan")
    context = "while 2 trainings run" if training else "no training"
    client = "lean raw HTTP/1.1 connections" if lean else "httpx"
    print(f"\n2. config endpoints, {len(students)} students ({context}, {client}), think "
          f"{think[0]}-{think[1]} s, {elapsed:.0f} s:")
    rate = len(everything) / elapsed
    print(f"   {rate:7.1f} requests/s ({len(everything)} requests), {summary(everything)}")
    print(f"   errors {errors} (target 0: {'OK' if errors == 0 else 'MISSED'}), "
          f"p99 {p99:.1f} ms (target < {P99_TARGET_MS:.0f} ms: {'OK' if p99 < P99_TARGET_MS else 'MISSED'})")
    if "write_training_params" in results.latencies:
        rest = [value for name, values in results.latencies.items() if name != "write_training_params"
                for value in values]
        print(f"   without write_training_params (a reward check in a child each): {summary(rest)}")
    per_request = cores["server"] * elapsed / max(len(everything), 1) * 1000
    print(f"   {cores_line(cores)}; the server spent {per_request:.1f} ms of CPU a request")
    for endpoint in sorted(results.latencies, key=lambda name: -len(results.latencies[name])):
        latencies = results.latencies[endpoint]
        print(f"   {endpoint:22s} {len(latencies):6d}  {summary(latencies)}")
    for (endpoint, error), count in sorted(results.errors.items()):
        print(f"   error: {endpoint} {error}: {count}")
    if watcher is not None:
        samples = await watcher
        states = {session: Counter(sample.jobs[session]["state"] for sample in samples)
                  for session in TRAINING_SESSIONS}
        always = all(set(counts) == {"running"} for counts in states.values())
        print(f"   trainings running throughout ({len(samples)} samples of /jobs): "
              f"{'yes' if always else 'NO ' + str(states)}")
        for session in TRAINING_SESSIONS:
            episodes, steps = speed(samples[0], samples[-1], session)
            print(f"   training {session} under load: {episodes:.2f} episodes/s, {steps:,.0f} steps/s")


# ----- trainings and viewers -------------------------------------------------------------------------------
async def start_trainings(owner: httpx.AsyncClient) -> list[int]:
    """Start both trainings; their workers' process ids once they run."""
    for session in TRAINING_SESSIONS:
        await make_session(owner, session, 100_000)
        (await owner.post(f"{V1}/train", params={"session_id": session})).raise_for_status()
    for _ in range(600):  # past the workers' start-up (they import PyTorch) and their first episodes
        jobs = (await sample_jobs(owner)).jobs
        if all(jobs[s]["state"] == "running" and jobs[s]["episode"] >= 3 for s in TRAINING_SESSIONS):
            return [jobs[s]["pid"] for s in TRAINING_SESSIONS]
        await asyncio.sleep(0.1)
    raise SystemExit(f"the trainings did not start: {jobs}")


async def training_alone(owner: httpx.AsyncClient, seconds: float, meter: CpuMeter) -> None:
    meter.begin()
    first = await sample_jobs(owner)
    await asyncio.sleep(seconds)
    last = await sample_jobs(owner)
    cores = meter.cores()
    print(f"\n1. two trainings, alone for {seconds:.0f} s:")
    for session in TRAINING_SESSIONS:
        episodes, steps = speed(first, last, session)
        print(f"   training {session}: {episodes:.2f} episodes/s, {steps:,.0f} steps/s "
              f"(state {last.jobs[session]['state']})")
    print(f"   {cores_line(cores)}")


async def viewer(url: str, token: str, session: str, seconds: float) -> float:
    """Frames per second one viewer receives, from ``WARM_UP`` seconds after its first frame on (a view
    that starts late catches up with a burst of frames).

    A lean viewer: a raw connection that counts MJPEG parts, so that the viewers' own work on this machine
    stays small (in real use they are browsers elsewhere)."""
    host, port = url.removeprefix("http://").split(":")
    marker = b"--frame\r\n"
    tail = b""
    started = 0.0
    arrivals: list[float] = []  # when each counted frame arrived
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {V1}/stream?session_id={session}&token={token} HTTP/1.1\r\nHost: {host}\r\n"
                     "Connection: close\r\n\r\n".encode())
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), left)
            except asyncio.TimeoutError:
                break
            if not chunk:
                break
            data = tail + chunk
            found = data.count(marker)
            if found:
                now = time.monotonic()
                started = started or now
                if now - started >= WARM_UP:
                    arrivals.extend([now] * found)
            tail = data[-(len(marker) - 1):]
    finally:
        writer.close()
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


async def viewers_phase(url: str, token: str, owner: httpx.AsyncClient, viewers: int, seconds: float,
                        meter: CpuMeter) -> None:
    """Training speed unviewed, viewed, unviewed again: training speed drifts as the policy changes, and
    the two unviewed windows around the viewed one show how much."""
    session, other = TRAINING_SESSIONS
    first = await sample_jobs(owner)
    await asyncio.sleep(seconds)
    before = await sample_jobs(owner)
    tasks = [asyncio.create_task(viewer(url, token, session, seconds + 1.0)) for _ in range(viewers)]
    await asyncio.sleep(1.0)  # the view starts drawing
    during = await sample_jobs(owner)
    meter.begin()
    rates = sorted(await asyncio.gather(*tasks))
    viewed = await sample_jobs(owner)
    cores = meter.cores()
    await asyncio.sleep(3.0)  # the view winds down (it draws for 2 s after its last viewer left)
    after = await sample_jobs(owner)
    await asyncio.sleep(seconds)
    last = await sample_jobs(owner)
    print(f"\n3. {viewers} viewers of {session} for {seconds + 1:.0f} s: frames/s per viewer "
          f"min {rates[0]:.1f}, median {statistics.median(rates):.1f}, max {rates[-1]:.1f} "
          "(the stream runs at car_speed, 30)")
    print(f"   while viewed: {cores_line(cores)}")
    for name in (session, other):
        unviewed = [speed(first, before, name)[1], speed(after, last, name)[1]]
        watched = speed(during, viewed, name)[1]
        base = statistics.mean(unviewed)
        print(f"   training {name}{' (viewed)' if name == session else ''}: steps/s {unviewed[0]:,.0f} "
              f"before, {watched:,.0f} while viewed, {unviewed[1]:,.0f} after: {watched / base - 1:+.1%}")


# ----- main ------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, url: str, home: Path, token: str, process: subprocess.Popen) -> None:
    training = not args.no_training
    mix = dict(MIX)
    if args.reward_share > 0:
        mix["write_training_params"] = sum(MIX.values()) * args.reward_share / (1 - args.reward_share)
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}
                                 ) as owner:
        began = time.monotonic()
        students = await make_students(url, home, token, args.clients, args.owner)
        print(f"server pid {process.pid} on {url}; {len(students)} students "
              f"({'all with the owner token' if args.owner else 'each a user with a token'}) and their "
              f"sessions made in {time.monotonic() - began:.0f} s")
        meter = CpuMeter(process.pid, await start_trainings(owner) if training else [])
        if training:
            await training_alone(owner, args.baseline, meter)
        await config_load(url, owner, students, mix, tuple(args.think), args.duration, training, meter,
                          not args.httpx)
        if training and args.viewers > 0:
            await viewers_phase(url, token, owner, args.viewers, args.view_seconds, meter)
            for session in TRAINING_SESSIONS:
                await owner.get(f"{V1}/stop", params={"session_id": session})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200, help="students (one browser each)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of config load")
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 1.5), metavar=("MIN", "MAX"),
                        help="seconds a student thinks between two requests (uniform)")
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--view-seconds", type=float, default=10.0)
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of training measured alone")
    parser.add_argument("--no-training", action="store_true", help="the config load alone, for comparison")
    parser.add_argument("--owner", action="store_true", help="every student uses the owner's token")
    parser.add_argument("--httpx", action="store_true",
                        help="students' browsers are httpx clients instead of raw HTTP/1.1 connections (ten "
                        "times the CPU time: the load generator shares the machine with the server)")
    parser.add_argument("--reward-share", type=float, default=0.01,
                        help="share of requests that save a reward function (write_training_params)")
    args = parser.parse_args()
    token = secrets.token_urlsafe(16)
    busy = busy_cores()
    print(f"before starting, the machine was busy on {busy:.2f} of its {os.cpu_count()} cores"
          + ("  (WARNING: other work is running; figures will be skewed)" if busy > 0.2 else ""))
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        process, url = start_server(home, token)
        gc.freeze()  # like the server: no full collection of import-time objects pauses the students
        try:
            asyncio.run(run(args, url, home, token, process))
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
