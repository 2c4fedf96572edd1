"""The ``rewards-api`` command, run as a real process the way a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).parent / "rewards-api")


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([COMMAND, "--home", str(home), *args], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "200"})
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def test_the_whole_loop_headless(tmp_path: Path) -> None:
    home = tmp_path / "home"
    reward = tmp_path / "reward.py"
    reward.write_text("def reward_function(params):\n    return 1.0 - params['distance_from_center'] / 35\n")
    cli(home, "create", "demo", "--episodes", "25", "--model", "[[5, 16], [16, 3]]", "--gamma", "90",
        "--reward-file", str(reward))
    agent = json.loads((home / "demo" / "agent_params.json").read_text())
    assert agent == {"model_configuration": "[[5, 16], [16, 3]]", "learning_rate": 0.01, "loss_fn": "mse",
                     "optimizer": "adam", "gamma": 90, "epsilon": 20, "num_episodes": 25}
    training = json.loads((home / "demo" / "training_params.json").read_text())
    assert training["reward_function"] == reward.read_text()

    trained = cli(home, "train", "demo", "--cars", "8")
    assert "Training finished: 25 episodes" in trained.stdout
    assert (home / "demo" / "session_saved_models" / "model.pth").exists()

    evaluated = cli(home, "evaluate", "demo", "--mode", "evaluation", "--track", "1", "--trials", "2",
                    "--json")
    metrics = json.loads(evaluated.stdout)
    assert metrics["num_trials"] == 2 and set(metrics) >= {"record", "laps_completed", "mean_progress"}
    stored = json.loads((home / "demo" / "evaluation_metrics.json").read_text())
    assert stored["evaluation"]["1"] == metrics

    listed = cli(home, "sessions")
    assert "demo" in listed.stdout and "[[5, 16], [16, 3]]" in listed.stdout and "25" in listed.stdout
    cli(home, "delete", "demo")
    assert not (home / "demo").exists()
    assert "No sessions" in cli(home, "sessions").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lr", "60"), "learning_rate = 60"),
        (("--model", "[[4, 9], [9, 3]]"), "model_configuration"),
        (("--gamma", "150"), "gamma"),
        (("--loss", "hinge"), "loss_fn"),
        (("--track", "7"), "environment_world"),
    ],
)
def test_bad_parameters_are_named_and_nothing_is_created(tmp_path: Path, args: tuple[str, ...],
                                                         message: str) -> None:
    result = cli(tmp_path, "create", "bad", *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "bad").exists()


def test_user_mistakes_get_one_clear_line(tmp_path: Path) -> None:
    bad_reward = tmp_path / "r.py"
    bad_reward.write_text("def reward_function(params):\n    return 1 +\n")
    result = cli(tmp_path, "create", "x", "--reward-file", str(bad_reward), check=False)
    assert result.returncode == 2 and "reward_function" in result.stderr and "line 2" in result.stderr
    for args, message in [
        (("create", "no/slash"), "not valid"),
        (("train", "missing"), "no session 'missing'"),
        (("evaluate", "missing"), "no session 'missing'"),
        (("delete", "missing"), "no session 'missing'"),
        (("create", "x", "--reward-file", str(tmp_path / "nope.py")), "--reward-file"),
    ]:
        result = cli(tmp_path, *args, check=False)
        assert result.returncode == 2, args
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    cli(tmp_path, "create", "y")
    assert "already exists" in cli(tmp_path, "create", "y", check=False).stderr
    result = cli(tmp_path, "evaluate", "y", check=False)
    assert result.returncode == 2 and "train it first" in result.stderr


def test_ctrl_c_stops_training_and_keeps_what_was_learned(tmp_path: Path) -> None:
    cli(tmp_path, "create", "long", "--episodes", "100000")
    process = subprocess.Popen([COMMAND, "--home", str(tmp_path), "train", "long", "--cars", "8"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "long" / "training_metrics.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not json.loads(metrics.read_text())["plot_scores"]:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Training stopped" in stdout
    episodes = len(json.loads(metrics.read_text())["plot_scores"])
    assert episodes > 0
    assert (tmp_path / "long" / "session_saved_models" / "model.pth").exists()
    assert (tmp_path / "long" / "session_saved_models" / "checkpoints" / "resume.pth").exists()
