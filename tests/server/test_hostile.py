"""Hostile reward functions against the real server: each is refused with 422 and its line when written, or
contained when it runs (its job or evaluation fails with a clear message, the server carries on). Every one
tries to create or append to a canary file and to read a secret; afterwards the canary must not exist."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from rewards_api.agents.dqn import QNetwork
from rewards_api.store import SessionStore

V1 = "/api/v1"


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The canary (must never exist) and a secret (must never be read)."""
    folder = tmp_path_factory.mktemp("hostile")
    secret = folder / "secret.txt"
    secret.write_text("the secret")
    return folder / "canary.txt", secret


def refused_corpus(canary: Path, secret: Path) -> dict[str, tuple[str, str, int]]:
    """name: (source, words of the 422 message, line it names)."""
    c, s = repr(str(canary)), repr(str(secret))
    grab = f"open({c}, 'a').write(open({s}).read())"
    return {
        "open": (f"def reward_function(params):\n    {grab}\n    return 1\n", "`open` is not available", 2),
        "os": (f"import os\ndef reward_function(params):\n    os.system('cat ' + {s} + ' > ' + {c})\n"
               "    return 1\n", "importing `os` is not allowed", 1),
        "subprocess": (f"def reward_function(params):\n    import subprocess\n"
                       f"    subprocess.run(['cp', {s}, {c}])\n    return 1\n",
                       "importing `subprocess` is not allowed", 2),
        "socket": ("import socket\ndef reward_function(params):\n"
                   "    socket.create_connection(('127.0.0.1', 80))\n    return 1\n",
                   "importing `socket` is not allowed", 1),
        "__import__": (f"def reward_function(params):\n    __import__('os').system('touch ' + {c})\n"
                       "    return 1\n", "`__import__` is not allowed", 2),
        "subclasses": ("def reward_function(params):\n"
                       "    for k in ().__class__.__base__.__subclasses__():\n"
                       "        if k.__name__ == '_wrap_close':\n"
                       f"            k.__init__.__globals__['system']('touch ' + {c})\n"
                       "    return 1\n", "`.__class__`", 2),
        "frames": ("def reward_function(params):\n    g = (x for x in ())\n"
                   f"    g.gi_frame.f_back.f_globals['__builtins__']['open']({c}, 'w')\n    return 1\n",
                   "is not allowed", 3),
        "format": ("def reward_function(params):\n    leak = '{0.__globals__}'.format(reward_function)\n"
                   "    return 1\n", "`.format()` is not allowed", 2),
        "exec": (f"def reward_function(params):\n    exec('open(' + {c!r} + ', \"w\")')\n    return 1\n",
                 "`exec` is not available", 2),
        "traceback": ("def reward_function(params):\n    try:\n        1 / 0\n    except Exception as e:\n"
                      "        f = e.__traceback__.tb_frame.f_globals\n    return 1\n",
                      "`.__traceback__`", 5),
        "class": (f"class Evil:\n    def __init__(self):\n        open({c}, 'w')\n"
                  "def reward_function(params):\n    return 1\n", "class definitions are not allowed", 1),
        "memory bomb": ("def reward_function(params):\n    x = 'a' * 10**10\n    return 1\n",
                        "used too much memory", 2),
        "endless loop": ("def reward_function(params):\n    while True:\n        pass\n",
                         "more than 1 s of CPU", 2),
        "NaN": ("def reward_function(params):\n    return float('nan')\n", "finite number", 2),
        "not a number": ("def reward_function(params):\n    return 'fast'\n", "it must return a number", 2),
        # Issue 14: a generator whose clean-up would run when it is collected, after the call.
        "finalizer": ("def keep():\n    try:\n        yield 1\n    finally:\n"
                      f"        {grab}\n" + "def reward_function(params):\n    params['kept'] = keep()\n"
                      "    next(params['kept'])\n    return 1\n", "`yield` inside a `try` statement", 3),
        "deep nesting": ("def reward_function(params):\n    t = ()\n    for i in range(10**6):\n"
                         "        t = (t,)\n    return len({t})\n", "nests things too deeply", 0),
    }


def new_session(api: httpx.Client, episodes: int = 100_000) -> str:
    session = "hx_" + uuid.uuid4().hex[:10]
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    api.post(f"{V1}/write_env_params", json={"session_id": session, "environment_world": 1, "car_speed": 30})
    api.post(f"{V1}/write_agent_params", json={"session_id": session, "model_configuration": "[[5,9],[9,3]]",
                                                "num_episodes": episodes})
    return session


def job(api: httpx.Client, session: str) -> dict:
    return api.get(f"{V1}/jobs/{session}").json()


def later(body: str) -> str:
    """Passes the check (steps <= 5 there) and misbehaves once the car has driven a few steps."""
    return f"def reward_function(params):\n    if params['steps'] > 5:\n        {body}\n    return 1\n"


CONTAINED = {
    # name: (source, words of the job's error). More kinds (memory, an uninterruptible C operation) are
    # contained in tests/runs/test_reward_limits.py with the same job manager the server uses.
    "endless loop": (later("while True: pass"), "more than 1 s of CPU time"),
    "deep nesting": (later("f = [1]\n        for i in range(10**6):\n            f = filter(None, f)\n"
                           "        return next(f)"), "nests things too deeply"),
}


def test_hostile_functions_are_refused_or_contained_and_nothing_escapes(
        api: httpx.Client, server, paths: tuple[Path, Path]) -> None:
    canary, secret = paths
    # Contained ones first: their trainings start while the others are refused.
    running = {}
    for name, (source, _) in CONTAINED.items():
        session = new_session(api)
        written = api.post(f"{V1}/write_reward_fn", json={"session_id": session, "reward_function": source})
        assert written.status_code == 200, (name, written.text)
        assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
        running[name] = session

    session = new_session(api)

    def write(source: str) -> httpx.Response:
        with server.client() as client:
            return client.post(f"{V1}/write_reward_fn",
                               json={"session_id": session, "reward_function": source})

    corpus = refused_corpus(canary, secret)
    with ThreadPoolExecutor(4) as pool:  # each check is a child process: the server checks them at once
        responses = dict(zip(corpus, pool.map(write, [source for source, _, _ in corpus.values()]),
                             strict=True))
    for name, (_, words, line) in corpus.items():
        response = responses[name]
        assert response.status_code == 422, (name, response.text)
        body = response.json()
        assert body["errors"][0]["parameter"] == "reward_function", name
        assert words in body["message"], (name, body["message"])
        assert not line or f"(line {line}" in body["message"], (name, body["message"])  # 0: a crash
    stored = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()["training_params"]
    assert "canary" not in str(stored)  # nothing refused was stored

    deadline = time.monotonic() + 60
    for name, session in running.items():
        while job(api, session).get("state") not in ("failed", "finished", "stopped"):
            assert time.monotonic() < deadline, (name, job(api, session))
            assert api.get("/health").json()["ok"] is True
            time.sleep(0.2)
        ended = job(api, session)
        assert ended["state"] == "failed" and CONTAINED[name][1] in ended["error"], (name, ended)
    assert api.get("/health").json()["ok"] is True
    assert not canary.exists()
    assert secret.read_text() == "the secret"


def test_an_evaluation_with_a_runaway_reward_fails_with_the_limit(api: httpx.Client, server,
                                                                    paths: tuple[Path, Path]) -> None:
    canary, _ = paths
    session = new_session(api, episodes=20)
    network = QNetwork([(5, 9), (9, 3)])  # a "trained" model that always drives straight on
    with torch.no_grad():
        for tensor in network.parameters():
            tensor.zero_()
        network.layers[-1].bias[2] = 1.0
    torch.save(network.state_dict(), SessionStore(server.home).paths(session).model)
    reward = later("while True: pass")
    assert api.post(f"{V1}/write_reward_fn", json={"session_id": session, "reward_function": reward}
                    ).status_code == 200
    started = time.monotonic()
    refused = api.get(f"{V1}/evaluate", params={"session_id": session, "mode": "training", "track_num": 1,
                                                "num_trials": 1})
    assert refused.status_code == 422, refused.text
    assert "more than 1 s of CPU time" in refused.json()["message"] and "line 3" in refused.json()["message"]
    assert time.monotonic() - started < 20
    assert api.get("/health").json()["ok"] is True
    assert not canary.exists()
