"""The original React front end (rewards-ai/training-platform) against a real server, as it is: its
Environments page, the origins of its vite dev server (CORS, with the headers Chromium sends), and the live
chart it polls from its own ``src/assets/temp.json`` (``serve --ui-metrics-file``)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
from conftest import COMMAND, Server, free_port, start_server, stop_server
from test_evaluate import read_parts
from test_training import wait_for

from rewards_api.config import DEFAULT_CORS_ORIGINS, Settings
from rewards_api.server.ui_metrics import UiMetricsFile, ui_metrics
from rewards_api.store import SessionStore

V1 = "/api/v1"
UI_PICTURES = {"car_racer", "bi_pedal"}
"""The UI's src/assets/images/environments/<id>.gif files: the Environments page shows <id>.gif."""
ADDED_ORIGIN = "http://example.test:8080"
UI_JSON_POSTS = ("write_env_params", "write_agent_params", "write_training_params", "push_model")
"""The UI's axios posts with a JSON body: each makes Chromium send a preflight first."""
ALIVE = "def reward_function(params):\n    return 1.0 if params['is_alive'] else 0.0\n"
TWICE_ALIVE = "def reward_function(params):\n    return 2.0 if params['is_alive'] else 0.0\n"
SAMPLE_CHART = {"plot_scores": [7, 6, 6], "plot_mean_scores": [7.0, 6.5, 6.3333]}
"""What the UI's own temp.json holds before any training (a sample run)."""


def chromium_headers(origin: str, api_url: str) -> dict[str, str]:
    """The headers headless Chromium sends with a fetch from a page at ``origin`` (recorded from it)."""
    same_host = httpx.URL(origin).host == httpx.URL(api_url).host
    return {
        "Origin": origin,
        "Referer": f"{origin}/",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Site": "same-site" if same_host else "cross-site",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/156.0.0.0 Safari/537.36",
        "Accept-Encoding": "gzip, deflate, br, zstd",
        "Accept-Language": "en-US,en;q=0.9",
    }


def preflight(server: Server, path: str, origin: str) -> httpx.Response:
    """The OPTIONS Chromium sends before the UI's JSON post to ``path``."""
    headers = {
        **chromium_headers(origin, server.url),
        "Accept": "*/*",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    return httpx.options(f"{server.url}{V1}/{path}", headers=headers)


def ui_post(server: Server, path: str, origin: str, body: Any = None) -> httpx.Response:
    """An axios ``post`` of the UI: JSON when it has a body, no body (and no Content-Type) otherwise."""
    headers = {**chromium_headers(origin, server.url), "Accept": "application/json, text/plain, */*"}
    return httpx.post(f"{server.url}{V1}/{path}", headers=headers, json=body)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Run as the README tells the original UI's users to, with one more origin."""
    running = start_server(tmp_path_factory.mktemp("ui") / "home", "--no-auth", "--cors-origin", ADDED_ORIGIN)
    yield running
    stop_server(running)


# ----- the Environments page -----------------------------------------------------------------------------


def test_the_environments_page_finds_its_pictures(ui_server: Server) -> None:
    answer = ui_post(ui_server, "get_all_envs", "http://localhost:3000")
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"  # the page may read it
    envs = answer.json()  # axios's response.data, which the page maps over
    assert [env["id"] for env in envs] == ["car_racer", "snake_game", "street_fighter", "bi-pedal"]
    released = [env for env in envs if env["isReleased"] is True]
    assert [env["name"] for env in released] == ["Car Racer"]
    assert released[0]["id"] in UI_PICTURES
    assert all(isinstance(env["description"], str) and env["description"] for env in envs)


@pytest.mark.parametrize("name", ["car-race", "car_racer"])
def test_the_ui_environment_name_and_the_env_ids_are_accepted(ui_server: Server, name: str) -> None:
    session = f"env_{name.replace('-', '_')}"
    origin = "http://localhost:3000"
    assert ui_post(ui_server, f"create_session?session_id={session}", origin).status_code == 200
    env = {
        "session_id": session,
        "environment_name": name,
        "environment_world": 2,
        "mode": "training",
        "car_speed": 20,
    }  # what CreateModels.jsx sends, with "car-race"
    written = ui_post(ui_server, "write_env_params", origin, env)
    assert written.status_code == 200, written.text
    sessions = httpx.get(f"{ui_server.url}{V1}/get_all_sessions").json()
    assert sessions[session]["env_params"]["environment_name"] == name  # shown as sent, on the Models page


# ----- CORS: the UI's dev server ----------------------------------------------------------------------


@pytest.mark.parametrize("origin", [*DEFAULT_CORS_ORIGINS, ADDED_ORIGIN])
def test_the_ui_origins_pass_the_preflight(ui_server: Server, origin: str) -> None:
    for path in UI_JSON_POSTS:
        answer = preflight(ui_server, path, origin)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["access-control-allow-origin"] == origin
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "content-type" in answer.headers["access-control-allow-headers"].lower()
    # ...and the request that follows may be read by the page.
    posted = ui_post(ui_server, "write_env_params", origin, {"session_id": "nobody_here"})
    assert posted.headers["access-control-allow-origin"] == origin
    assert posted.status_code == 404 and "nobody_here" in posted.json()["message"]


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://localhost:8080", "http://example.test:8081", "https://localhost:3000"],
)
def test_other_origins_are_refused(ui_server: Server, origin: str) -> None:
    answer = preflight(ui_server, "write_env_params", origin)
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    simple = ui_post(ui_server, "get_all_envs", origin)  # no preflight: the browser hides the answer
    assert "access-control-allow-origin" not in simple.headers


def test_configured_origins_add_to_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDS_CORS_ORIGINS", "http://a.test:8080, http://b.test:9000/")
    assert Settings().allowed_origins == [*DEFAULT_CORS_ORIGINS, "http://a.test:8080", "http://b.test:9000"]
    monkeypatch.setenv("REWARDS_CORS_ORIGINS", '["http://c.test"]')
    assert Settings().allowed_origins == [*DEFAULT_CORS_ORIGINS, "http://c.test"]
    # A flag replaces its variable, as every flag does; the defaults stay.
    assert Settings(cors_origins=[ADDED_ORIGIN]).allowed_origins == [*DEFAULT_CORS_ORIGINS, ADDED_ORIGIN]
    for wrong in ("*", "localhost:3000", "http://localhost:3000/app"):
        with pytest.raises(ValueError, match="--cors-origin"):
            Settings(cors_origins=[wrong])


# ----- the live chart: --ui-metrics-file -------------------------------------------------------------------


class ChartReader:
    """Reads the chart file as fast as it can, as the UI's 10 ms poll does; keeps each version it saw with
    the inode it was read from, and every read that was not a whole chart. Each version's file is kept open
    until the end, so that its inode number cannot be given to a later file (ext4 reuses them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.versions: list[tuple[dict[str, Any], int]] = []
        self.torn: list[bytes] = []
        self._open: list[BinaryIO] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.versions[-1][0] if self.versions else None

    def _read(self) -> None:
        while not self._done.is_set():
            handle = self.path.open("rb")
            inode, raw = os.fstat(handle.fileno()).st_ino, handle.read()
            try:
                chart = json.loads(raw)
                whole = set(chart) == set(SAMPLE_CHART) and all(isinstance(v, list) for v in chart.values())
            except ValueError:
                whole = False
            if not whole:
                self.torn.append(raw)
            elif chart != self.latest:
                self.versions.append((chart, inode))
                self._open.append(handle)
                continue
            handle.close()
            time.sleep(0.002)

    def __enter__(self) -> ChartReader:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        for handle in self._open:
            handle.close()


def wait_until(check: Callable[[], Any], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def ui_session(api: httpx.Client, session: str, episodes: int, world: int, reward: str) -> str:
    """A session made with the UI's calls (CreateModels.jsx)."""
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    calls = {
        "write_env_params": {
            "environment_name": "car-race",
            "environment_world": world,
            "mode": "training",
            "car_speed": 20,
        },
        "write_agent_params": {
            "model_configuration": "[[5, 9], [9, 3]]",
            "learning_rate": 0.01,
            "loss_fn": "mse",
            "optimizer": "adam",
            "gamma": 0.9,
            "epsilon": 20,
            "num_episodes": episodes,
        },
        "write_training_params": {"learning_algorithm": "dqn", "enable_wandb": 0, "reward_function": reward},
    }
    for path, body in calls.items():
        written = api.post(f"{V1}/{path}", json={"session_id": session, **body})
        assert written.status_code == 200, written.text
    return session


def watch(api: httpx.Client, session: str, start: bool = True) -> None:
    """The UI's ``<img src=".../stream?session_id=...">``: one frame, then the page goes away."""
    params = {"session_id": session, "start": str(start).lower()}
    with api.stream("GET", f"{V1}/stream", params=params) as response:
        assert response.status_code == 200
        assert len(read_parts(response, 1)) == 1


def training_metrics(api: httpx.Client, session: str) -> dict[str, Any]:
    return ui_metrics(
        api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["training_metrics"]
    )


def is_prefix(chart: dict[str, Any] | None, metrics: dict[str, Any]) -> bool:
    """The metrics only grow while a session trains: an earlier copy is a prefix of them."""
    return chart is not None and all(chart[key] == metrics[key][: len(chart[key])] for key in chart)


def test_the_chart_follows_the_session_started_or_watched_last(
    launch: Callable[..., Server], tmp_path: Path
) -> None:
    assets = tmp_path / "training-platform" / "src" / "assets"
    assets.mkdir(parents=True)
    chart = assets / "temp.json"
    chart.write_text(json.dumps(SAMPLE_CHART))
    running = launch(tmp_path / "home", "--no-auth", "--max-jobs", "2", "--ui-metrics-file", str(chart))
    with running.client(token=None) as api, ChartReader(chart) as reader:
        long_run = ui_session(api, "long_run", episodes=100_000, world=1, reward=ALIVE)
        short_run = ui_session(api, "short_run", episodes=30, world=2, reward=TWICE_ALIVE)
        time.sleep(0.5)
        assert reader.versions == [(SAMPLE_CHART, reader.versions[0][1])]  # nothing trains: left alone

        assert api.post(f"{V1}/train", params={"session_id": long_run}).status_code == 200
        wait_until(
            lambda: len({len(c["plot_scores"]) for c, _ in reader.versions[1:]} - {0}) >= 3,
            "the chart has grown three times with the long run",
        )
        assert is_prefix(reader.latest, training_metrics(api, long_run))
        growing = [len(c["plot_scores"]) for c, _ in reader.versions[1:]]
        assert growing == sorted(growing)

        watch(api, short_run)  # starts it, as the UI's training view does
        wait_for(api, short_run, ("finished",))
        short_final = training_metrics(api, short_run)
        assert len(short_final["plot_scores"]) == 30
        wait_until(lambda: reader.latest == short_final, "the chart shows the short run's last scores")
        before = len(training_metrics(api, long_run)["plot_scores"])
        time.sleep(1.0)
        assert len(training_metrics(api, long_run)["plot_scores"]) > before  # the long run trains on...
        assert reader.latest == short_final  # ...but the session started last is the one shown

        watch(api, long_run, start=False)  # its stream opened again: it is followed again
        wait_until(
            lambda: (
                reader.latest != short_final and is_prefix(reader.latest, training_metrics(api, long_run))
            ),
            "the chart follows the long run again",
        )
        assert api.get(f"{V1}/stop", params={"session_id": long_run}).status_code == 200
        wait_for(api, long_run, ("stopped",))
        long_final = training_metrics(api, long_run)
        wait_until(lambda: reader.latest == long_final, "the chart shows the long run's last scores")
        assert json.loads(chart.read_text()) == long_final

    assert reader.torn == []  # the UI never reads half a file...
    inodes = [inode for _, inode in reader.versions]
    assert len(set(inodes)) == len(inodes)  # ...because each version is a new file, renamed in
    assert sorted(assets.iterdir()) == [chart]  # and no temporary file is left behind


def test_a_new_chart_file_starts_empty(tmp_path: Path) -> None:
    chart = tmp_path / "temp.json"
    store = SessionStore(tmp_path / "home")
    mirror = UiMetricsFile(chart, store)
    mirror.start()
    try:
        assert json.loads(chart.read_text()) == {"plot_scores": [], "plot_mean_scores": []}
        store.create("s")
        store.write("s", "training_metrics", {"plot_scores": [3, 5], "plot_mean_scores": "broken"})
        mirror.follow("s")
        wait_until(lambda: json.loads(chart.read_text())["plot_scores"] == [3, 5], "the chart is copied", 10)
        assert json.loads(chart.read_text()) == {"plot_scores": [3, 5], "plot_mean_scores": []}
        assert mirror.sync() is False  # nothing changed since: nothing written
    finally:
        mirror.close()


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot add a file to (root ignores permission bits: sysfs refuses even root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys/kernel")):
        try:
            (candidate / ".probe").touch()
        except OSError:
            return candidate
        (candidate / ".probe").unlink()
    pytest.skip("no folder here refuses new files")


def cli_environment() -> dict[str, str]:
    """This environment without REWARDS_* settings, and wide enough that errors are not wrapped."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("REWARDS_")}, "COLUMNS": "1000"}


@pytest.mark.parametrize(
    ("where", "fix"),
    [
        (lambda tmp: tmp / "no-such-folder" / "temp.json", "create it"),
        (lambda tmp: unwritable_folder(tmp) / "temp.json", "make it writable"),
        (lambda tmp: tmp, "give the path of a file"),
    ],
)
def test_a_chart_file_that_cannot_be_written_is_refused_at_start(
    tmp_path: Path, where: Callable[[Path], Path], fix: str
) -> None:
    path = where(tmp_path)
    started = subprocess.run(
        [
            COMMAND,
            "--home",
            str(tmp_path / "home"),
            "serve",
            "--no-auth",
            "--port",
            str(free_port()),
            "--ui-metrics-file",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_environment(),
    )
    assert started.returncode != 0
    message = " ".join((started.stdout + started.stderr).split())
    assert f"--ui-metrics-file {path}" in message and fix in message
    assert "rewards server on" not in message
