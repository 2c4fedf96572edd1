"""Nothing is lost: ``kill -9`` of the server (and of its worker, as a power cut would) during training and
during config writes, a full disk, and an unwritable home."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import torch
from conftest import COMMAND, TOKEN, Server

from rewards_api.agents.dqn import load_q_network
from rewards_api.store import SessionStore

V1 = "/api/v1"
AGENT = {"model_configuration": "[[5, 9], [9, 3]]", "learning_rate": 0.01, "loss_fn": "mse",
         "optimizer": "adam", "gamma": 90, "epsilon": 20, "num_episodes": 100000}


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody has reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_for(condition, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def checkpoint_counters(home: Path, session: str) -> tuple[int, int]:
    state = torch.load(SessionStore(home).paths(session).resume_checkpoint, weights_only=True)
    return int(state["episodes"]), int(state["steps"])


def every_json_file_parses(home: Path) -> int:
    files = [path for path in home.rglob("*.json") if not path.name.startswith(".")]
    for path in files:
        json.loads(path.read_text())  # raises on a torn file
    return len(files)


def running_job(client: httpx.Client, session: str, min_episode: int = 0) -> dict:
    def ready() -> dict | None:
        job = client.get(f"{V1}/jobs/{session}").json()
        return job if job.get("state") == "running" and job["episode"] >= min_episode and job["pid"] else None

    return wait_for(ready, 60, f"session {session} to train past episode {min_episode}")


def test_kill_9_during_training_loses_nothing_and_training_resumes(tmp_path: Path, launch) -> None:
    home = tmp_path / "home"
    first = launch(home, "--token", TOKEN)
    with first.client() as api:
        assert api.post(f"{V1}/create_session", params={"session_id": "race"}).status_code == 200
        assert api.post(f"{V1}/write_agent_params", json={"session_id": "race", **AGENT}).status_code == 200
        api.post(f"{V1}/train", params={"session_id": "race"})
        worker = running_job(api, "race", min_episode=30)["pid"]

    # 1. The server dies alone: its worker notices, saves what it learned and exits (no orphan).
    first.process.send_signal(signal.SIGKILL)
    wait_for(lambda: not alive(worker), 20, "the orphaned worker to save and exit")
    episodes, steps = checkpoint_counters(home, "race")
    assert episodes >= 30 and steps > 0

    # 2. Restarted, the session trains on from the checkpoint with its counters.
    second = launch(home, "--token", TOKEN)
    with second.client() as api:
        assert "race" in api.get(f"{V1}/get_all_sessions").json()
        api.post(f"{V1}/train", params={"session_id": "race"})
        job = running_job(api, "race", min_episode=episodes)
        assert job["steps"] >= steps
        saved = SessionStore(home).paths("race").resume_checkpoint
        before = saved.stat().st_mtime_ns
        wait_for(lambda: saved.stat().st_mtime_ns != before, 30, "a periodic checkpoint")
        episodes, steps = checkpoint_counters(home, "race")
        worker = api.get(f"{V1}/jobs/race").json()["pid"]

    # 3. A power cut: server and worker die at once, with no chance to save.
    os.kill(worker, signal.SIGKILL)
    second.process.send_signal(signal.SIGKILL)
    wait_for(lambda: not alive(worker) and second.process.poll() is not None, 10, "both to die")
    assert every_json_file_parses(home) >= 4  # env_params.json is only written when set
    paths = SessionStore(home).paths("race")
    network = load_q_network([(5, 9), (9, 3)], str(paths.model))
    assert network(torch.zeros(1, 5)).shape == (1, 3)

    third = launch(home, "--token", TOKEN)
    with third.client() as api:
        everything = api.get(f"{V1}/get_all_params", params={"session_id": "race"}).json()
        assert len(everything["training_metrics"]["plot_scores"]) >= episodes
        api.post(f"{V1}/train", params={"session_id": "race"})
        job = running_job(api, "race", min_episode=episodes)
        assert job["steps"] >= steps
        api.get(f"{V1}/stop", params={"session_id": "race"})


def test_kill_9_during_config_writes_leaves_whole_files(tmp_path: Path, launch) -> None:
    home = tmp_path / "home"
    written: list[int] = []
    sent: set[int] = set()
    for round_ in range(3):
        server = launch(home, "--token", TOKEN)
        with server.client() as api:
            if round_ == 0:
                api.post(f"{V1}/create_session", params={"session_id": "busy"})
            stop = threading.Event()

            def write_forever(api: httpx.Client = api, stop: threading.Event = stop) -> None:
                speed = 1
                while not stop.is_set():
                    speed = speed % 60 + 1
                    sent.add(speed)  # before sending: the server may save it and die before answering
                    try:
                        api.post(f"{V1}/write_env_params",
                                 json={"session_id": "busy", "environment_world": 2, "car_speed": speed})
                        api.post(f"{V1}/write_agent_params", json={"session_id": "busy", **AGENT})
                    except httpx.HTTPError:
                        return
                    written.append(speed)

            writers = [threading.Thread(target=write_forever) for _ in range(4)]
            for writer in writers:
                writer.start()
            time.sleep(1.0 + 0.3 * round_)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
            stop.set()
            for writer in writers:
                writer.join(10)
        assert every_json_file_parses(home) >= 5  # a write cut short leaves at most a hidden .tmp file
    assert len(written) > 20
    store = SessionStore(home)
    assert store.list_sessions() == ["busy"]
    assert store.read("busy", "env_params")["car_speed"] in sent


def test_a_full_disk_is_a_clear_507_and_the_saved_file_is_intact(tmp_path: Path, launch) -> None:
    limit = 64_000  # bytes: RLIMIT_FSIZE makes any bigger write fail with EFBIG, as a full disk would

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    home = tmp_path / "home"
    server: Server = launch(home, "--token", TOKEN, preexec_fn=small_files)
    with server.client() as api:
        api.post(f"{V1}/create_session", params={"session_id": "full"})
        fine = "def reward_function(params):\n    return 1.0\n"
        assert api.post(f"{V1}/write_reward_fn", json={"session_id": "full", "reward_function": fine}
                        ).status_code == 200
        huge = fine + "".join(f"# padding line {i} " + "x" * 60 + "\n" for i in range(1200))
        assert limit < len(huge) < 1_000_000
        refused = api.post(f"{V1}/write_reward_fn", json={"session_id": "full", "reward_function": huge})
        assert refused.status_code == 507, refused.text
        message = refused.json()["message"]
        assert "full" in message and "nothing saved was changed" in message
        kept = api.get(f"{V1}/get_all_params", params={"session_id": "full"}).json()
        assert kept["training_params"]["reward_function"] == fine
        assert api.get("/health").status_code == 200
    session = SessionStore(home).paths("full").root
    assert not [path.name for path in session.iterdir() if path.name.endswith(".tmp")]


def test_an_unwritable_home_is_refused_at_start_with_the_fix(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    for home in (not_a_folder, not_a_folder / "below"):
        done = subprocess.run([COMMAND, "--home", str(home), "serve", "--port", "0"], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2
        assert str(not_a_folder) in done.stderr and "--home" in done.stderr
