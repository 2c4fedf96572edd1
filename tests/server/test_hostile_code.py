"""Hostile reward code against a real server, round two (issue 14): code that would run after its call
(finalizers), that rewrites what its limits read, that writes to the server's log, that crashes its
process by nesting, and errors that would show heap addresses. Each is refused or contained, and the
server's log holds none of the user's text raw."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import httpx
from test_hostile import new_session

from rewards_api.server import evaluation

V1 = "/api/v1"
MARK = "HOSTILE-MARK-7f3a"
FINAL = ("failed", "finished", "stopped")
ESCAPES = "\x1b[2J\x1b[31m\x07"  # clear the screen, red, bell (raw in the source text)

# A generator kept after the call (in params and in a module-level list) whose clean-up loops and raises
# an exception whose text would be printed as "Exception ignored in ..." when it is collected.
FINALIZER = (
    "def keep():\n"
    "    try:\n"
    "        yield 1\n"
    "    finally:\n"
    "        for i in range(10**9):\n"
    "            pass\n"
    f"        raise ValueError('{ESCAPES}\\r\\nINFO:     {MARK} forged')\n"
    "KEPT = []\n"
    "def reward_function(params):\n"
    "    g = keep()\n"
    "    next(g)\n"
    "    params['kept'] = g\n"
    "    KEPT.append(g)\n"
    "    return 1\n"
)

# Valid code whose every line makes Python print a SyntaxWarning quoting it, escape bytes included.
WARNINGS = "def reward_function(params):\n" + "".join(
    f"    x{i} = ('{ESCAPES}INFO:     {MARK} forged {i}' is 1)\n" for i in range(16)) + "    return 1\n"


def later(*body: str) -> str:
    """Passes the check (steps <= 5 there) and runs ``body`` once the car has driven a few steps."""
    lines = "".join(f"        {line}\n" for line in body)
    return f"def reward_function(params):\n    if params['steps'] > 5:\n{lines}    return 1\n"


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (user and system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def put_reward_on_disk(server: Any, session: str, source: str) -> None:
    """As a file written by hand or an imported archive would: past the check that writing does."""
    path = Path(server.home) / session / "training_params.json"
    path.write_text(json.dumps({"learning_algorithm": "dqn", "enable_wandb": 0, "reward_function": source}))


def job(api: httpx.Client, session: str) -> dict[str, Any]:
    return api.get(f"{V1}/jobs/{session}").json()


def wait_job(api: httpx.Client, session: str, done: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job(api, session)
        if done(current):
            return current
        time.sleep(0.1)
    raise AssertionError(f"session {session}: {job(api, session)}")


def log_from(server: Any, offset: int) -> bytes:
    with open(server.output, "rb") as log:
        log.seek(offset)
        return log.read()


def assert_clean(grown: bytes) -> None:
    """No raw control byte but the newline, and no line of the user's that looks like the server's."""
    assert not {byte for byte in grown if byte < 0x20 and byte != 0x0A} | ({0x7F} & set(grown)), grown[-2000:]
    for line in grown.splitlines():
        assert not (line.startswith(b"INFO:") and MARK.encode() in line), line


# ----- finding 1: nothing the user wrote runs after its call ---------------------------------------------


def test_a_finalizer_is_refused_when_written_and_fails_its_job_when_found_on_disk(api: httpx.Client,
                                                                                  server: Any) -> None:
    offset = server.output.stat().st_size
    refused = api.post(f"{V1}/check_reward_fn", json={"reward_function": FINALIZER})
    assert refused.status_code == 422, refused.text
    assert "`yield` inside a `try` statement is not allowed" in refused.json()["message"]
    assert "(line 3" in refused.json()["message"]

    session = new_session(api)
    put_reward_on_disk(server, session, FINALIZER)
    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    ended = wait_job(api, session, lambda status: status.get("state") in FINAL, 60)
    assert ended["state"] == "failed" and "`yield` inside a `try` statement" in ended["error"], ended
    assert api.get("/health").json()["ok"] is True
    time.sleep(0.5)
    assert MARK.encode() not in log_from(server, offset)


def test_stop_ends_a_job_within_2_s_whatever_its_reward_is_doing(api: httpx.Client, server: Any) -> None:
    session = new_session(api)
    # One C operation: no Python-level interruption reaches it (the kernel's CPU limit would, seconds later).
    written = api.post(f"{V1}/write_reward_fn", json={"session_id": session,
                                                     "reward_function": later("return sum(range(10**13))")})
    assert written.status_code == 200, written.text
    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    running = wait_job(api, session, lambda status: status.get("state") == "running"
                       and status.get("episodes") and status.get("pid"), 60)
    # Inside the sum: its first five steps take the worker milliseconds of CPU, the sum takes it all. (On a
    # busy machine a niced worker can need seconds of wall time to get there.)
    spent = cpu_seconds(running["pid"])
    deadline = time.monotonic() + 30
    while cpu_seconds(running["pid"]) - spent < 0.5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job(api, session)["state"] == "running"
    asked = time.time()
    assert api.get(f"{V1}/stop", params={"session_id": session}).status_code == 200
    ended = wait_job(api, session, lambda status: status.get("state") in FINAL, 10)
    # The server's own clock of the job's end: the test's polling of a busy machine is not the stop's time.
    assert ended["finished_at"] - asked < 2.0, (ended["finished_at"] - asked, ended)
    assert ended["state"] == "stopped" and "asked to stop" in ended["error"], ended
    assert api.get("/health").json()["ok"] is True


# ----- finding 3: what processes running user code write is captured, bounded and escaped -----------------


def test_output_of_checks_and_workers_reaches_the_log_bounded_and_escaped(api: httpx.Client,
                                                                           server: Any) -> None:
    offset = server.output.stat().st_size
    for _ in range(8):  # each check prints 16 warnings, each quoting its line: 8 KB of raw text in all
        checked = api.post(f"{V1}/check_reward_fn", json={"reward_function": WARNINGS})
        assert checked.status_code == 200, checked.text
    session = new_session(api)
    assert api.post(f"{V1}/write_reward_fn", json={"session_id": session, "reward_function": WARNINGS}
                    ).status_code == 200
    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    wait_job(api, session, lambda status: status.get("state") == "running" and status.get("episodes"), 60)
    api.get(f"{V1}/stop", params={"session_id": session})
    wait_job(api, session, lambda status: status.get("state") in FINAL, 10)
    time.sleep(1.0)
    grown = log_from(server, offset)
    assert_clean(grown)
    assert len(grown) < 20_000, len(grown)  # 20 lines a minute per process, each cut to 300 characters
    assert b"reward check: " in grown and b"\\x1b[2J" in grown  # captured, shown escaped
    assert f"training worker of session {session}: ".encode() in grown


# ----- finding 10: deep nesting crashes only its own process, and the message says why -------------------


def test_deep_nesting_fails_with_a_message_that_names_it(api: httpx.Client, server: Any) -> None:
    tuples = ("def reward_function(params):\n    t = ()\n    for i in range(10**6):\n        t = (t,)\n"
              "    return len({t})\n")  # hashing it follows the nesting
    refused = api.post(f"{V1}/check_reward_fn", json={"reward_function": tuples})
    assert refused.status_code == 422, refused.text
    assert "nests things too deeply" in refused.json()["message"], refused.json()

    session = new_session(api)
    chain = later("f = [1]", "for i in range(10**6):", "    f = filter(None, f)", "return next(f)")
    assert api.post(f"{V1}/write_reward_fn", json={"session_id": session, "reward_function": chain}
                    ).status_code == 200
    assert api.post(f"{V1}/train", params={"session_id": session}).status_code == 200
    ended = wait_job(api, session, lambda status: status.get("state") in FINAL, 60)
    assert ended["state"] == "failed", ended
    assert "nests things too deeply" in ended["error"] and "(line 6 of the reward function)" in ended["error"]
    assert api.get("/health").json()["ok"] is True


# ----- smaller: no heap addresses; the evaluation child's answer is JSON ---------------------------------


def test_errors_show_no_heap_addresses(api: httpx.Client) -> None:
    for source in ("def reward_function(params):\n    return (x for x in [])\n",
                   "def reward_function(params):\n    raise ValueError((x for x in []), reward_function)\n"):
        refused = api.post(f"{V1}/check_reward_fn", json={"reward_function": source})
        assert refused.status_code == 422, refused.text
        message = refused.json()["message"]
        assert "generator object" in message and "0x" not in message, message


class _Touch:
    """Unpickling this creates a folder: what a hostile evaluation child could send as a pickle."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.mkdir, (self.path,)


def test_the_evaluation_childs_answer_is_read_as_json_never_unpickled(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    receiver, sender = multiprocessing.Pipe(duplex=False)
    with receiver, sender:
        sender.send(["ok", _Touch(str(canary)), []])  # a pickle, as Connection.send writes
        assert evaluation._answer(receiver)[0] == "error"
        assert not canary.exists()
        sender.send_bytes(json.dumps(["ok", {"record": 1.5}, [[[1.0, 2.0, 3, [4.0], 5.0, 6.0]]]]).encode())
        assert evaluation._answer(receiver) == ("ok", {"record": 1.5}, [[[1.0, 2.0, 3, [4.0], 5.0, 6.0]]])
