"""The ``rewards-api`` command, run as a real process the way a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewards_api import cli as cli_module
from rewards_api.store import SessionStore

COMMAND = str(Path(sys.executable).parent / "rewards-api")
runner = CliRunner()


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
    trials = metrics.pop("trials")
    assert [trial["trial"] for trial in trials] == [1, 2]
    assert all(set(trial) == {"trial", "laps", "progress", "steps", "score", "time", "offtrack"}
               for trial in trials)
    assert max(trial["score"] for trial in trials) == metrics["record"]
    assert sum(trial["laps"] for trial in trials) == metrics["laps_completed"]
    stored = json.loads((home / "demo" / "evaluation_metrics.json").read_text())
    assert stored["evaluation"]["1"] == metrics
    shown = cli(home, "evaluate", "demo", "--mode", "evaluation", "--trials", "3").stdout
    assert "progress %" in shown and "steps" in shown and "seconds" in shown
    assert [int(row) for row in re.findall(r"^│\s+(\d+) │", shown, re.MULTILINE)] == [1, 2, 3]  # a row each

    listed = cli(home, "sessions")
    assert "demo" in listed.stdout and "[[5, 16], [16, 3]]" in listed.stdout and "25" in listed.stdout
    cli(home, "delete", "demo", "--yes")
    assert not (home / "demo").exists()
    assert "No sessions" in cli(home, "sessions").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lr", "60"), "--lr 60 is not valid"),
        (("--model", "[[4, 9], [9, 3]]"), "--model"),
        (("--gamma", "150"), "--gamma 150 is not valid"),
        (("--loss", "hinge"), "--loss 'hinge' is not valid"),
        (("--track", "7"), "--track 7 is not valid"),
    ],
)
def test_bad_parameters_are_named_and_nothing_is_created(tmp_path: Path, args: tuple[str, ...],
                                                         message: str) -> None:
    result = cli(tmp_path, "create", "bad", *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    for api_name in ("learning_rate", "model_configuration", "loss_fn", "environment_world"):
        assert api_name not in result.stderr
    assert not (tmp_path / "bad").exists()


def test_user_mistakes_get_one_clear_line(tmp_path: Path) -> None:
    bad_reward = tmp_path / "r.py"
    bad_reward.write_text("def reward_function(params):\n    return 1 +\n")
    result = cli(tmp_path, "create", "x", "--reward-file", str(bad_reward), check=False)
    assert result.returncode == 2 and "line 2" in result.stderr
    assert f"--reward-file {bad_reward}" in result.stderr
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
    # While it trains, its parameters cannot change and a second training does not start.
    for args in (("set", "long", "--lr", "0.005"), ("train", "long")):
        busy = cli(tmp_path, *args, check=False)
        assert busy.returncode == 2 and "is busy" in busy.stderr and "training" in busy.stderr, busy.stderr
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Training stopped" in stdout
    episodes = len(json.loads(metrics.read_text())["plot_scores"])
    assert episodes > 0
    assert (tmp_path / "long" / "session_saved_models" / "model.pth").exists()
    assert (tmp_path / "long" / "session_saved_models" / "checkpoints" / "resume.pth").exists()


HEAVY_MODULES = ("torch", "numpy", "gymnasium", "fastapi", "pydantic")
IMPORTS_AFTER = f"""
import json, sys
from rewards_api.cli import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps([name for name in {HEAVY_MODULES!r} if name in sys.modules]))
"""


def heavy_imports(*args: str) -> list[str]:
    """The heavy modules a real ``rewards-api ARGS`` run has imported when it ends."""
    result = subprocess.run([sys.executable, "-c", IMPORTS_AFTER, *args], capture_output=True, text=True,
                            timeout=120)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_commands_that_run_no_network_never_import_pytorch(tmp_path: Path) -> None:
    SessionStore(tmp_path).create("untrained")
    assert heavy_imports("--help") == [] and heavy_imports("--version") == []
    for args in (("sessions",), ("info", "untrained"), ("leaderboard",), ("train", "nosuch"),
                 ("evaluate", "nosuch"), ("evaluate", "untrained"), ("train", "untrained", "--track", "9"),
                 ("create", "bad", "--lr", "60")):
        assert "torch" not in heavy_imports("--home", str(tmp_path), *args), args


def test_help_shows_texts_as_written_and_no_values_after_flags() -> None:
    created = runner.invoke(cli_module.app, ["create", "--help"], env={"COLUMNS": "200"}).output
    assert "Q-network layers as JSON [[in, out], ...]." in created
    assert re.search(r"--model\s+JSON", created) and re.search(r"--reward-file\s+FILE", created)
    assert re.search(r"Usage: \S+ create \[OPTIONS\] SESSION\s*$", created, re.MULTILINE)
    for args in (["create", "--help"], ["train", "--help"], ["serve", "--help"], ["set", "--help"],
                 ["evaluate", "--help"], ["--help"], ["users", "--help"]):
        shown = runner.invoke(cli_module.app, args, env={"COLUMNS": "200"}).output
        assert "<bool>" not in shown and "<list" not in shown and "{session}" not in shown, args
        assert "Show this message and exit." in shown
    served = runner.invoke(cli_module.app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert re.search(r"--cors-origin\s+ORIGIN", served) and re.search(r"--no-auth\s+No token", served)


def test_errors_name_the_flags_typed(tmp_path: Path) -> None:
    SessionStore(tmp_path).create("s")
    for args, message in [
        (["train", "s", "--track", "9"], "--track 9"),
        (["train", "s", "--tracks", "1,9"], "--tracks 9"),
        (["evaluate", "s", "--mode", "race"], "--mode 'race'"),
        (["leaderboard", "--s3-bucket", "Not_A_Bucket"], "--s3-bucket 'Not_A_Bucket' is not valid"),
        (["set", "s", "--episodes", "0"], "--episodes 0 is not valid"),
        (["set", "s", "--optimizer", "sgd"], "--optimizer 'sgd' is not valid"),
    ]:
        result = runner.invoke(cli_module.app, ["--home", str(tmp_path), *args], env={"COLUMNS": "200"})
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert not re.search(r"\b(environment_world|s3_bucket|num_episodes)\b", result.output), result.output


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(cli_module.app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rewards-api {version('rewards-api')}"


def test_delete_asks_first_and_refuses_without_a_terminal(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore(tmp_path)
    store.create("keep")
    home = ["--home", str(tmp_path)]
    refused = runner.invoke(cli_module.app, [*home, "delete", "keep"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2 and "--yes" in refused.output and store.exists("keep")
    monkeypatch.setattr(cli_module, "_interactive", lambda: True)
    declined = runner.invoke(cli_module.app, [*home, "delete", "keep"], input="n\n")
    assert declined.exit_code == 1 and "Delete session keep" in declined.output and store.exists("keep")
    accepted = runner.invoke(cli_module.app, [*home, "delete", "keep"], input="y\n")
    assert accepted.exit_code == 0 and not store.exists("keep")
    store.create("scripted")
    assert runner.invoke(cli_module.app, [*home, "delete", "scripted", "-y"]).exit_code == 0
    assert not store.exists("scripted")


def test_set_changes_parameters_and_keeps_the_model_and_metrics(tmp_path: Path) -> None:
    cli(tmp_path, "create", "s", "--episodes", "30")
    root = tmp_path / "s"
    model = root / "session_saved_models" / "model.pth"
    model.write_bytes(b"weights")  # what set must keep: a model, metrics and the runs
    metrics = {"plot_scores": [1, 2, 3], "plot_mean_scores": [1, 1.5, 2]}
    (root / "training_metrics.json").write_text(json.dumps(metrics))
    history = json.loads((root / "session_saved_models" / "model_history.json").read_text())
    history["runs"] = [{"start": "fresh", "episodes": 3}]
    (root / "session_saved_models" / "model_history.json").write_text(json.dumps(history))
    reward = tmp_path / "reward.py"
    reward.write_text("def reward_function(params):\n    return 2.0\n")

    changed = cli(tmp_path, "set", "s", "--lr", "0.005", "--gamma", "95", "--reward-file", str(reward),
                  "--car-speed", "30", "--model", "[[5,9],[9,3]]")
    assert "--lr" in changed.stdout and "--reward-file" in changed.stdout
    agent = json.loads((root / "agent_params.json").read_text())
    assert agent["learning_rate"] == 0.005 and agent["gamma"] == 95 and agent["num_episodes"] == 30
    assert agent["model_configuration"] == "[[5, 9], [9, 3]]"  # the same network: kept as it was written
    assert json.loads((root / "env_params.json").read_text())["car_speed"] == 30
    assert json.loads((root / "training_params.json").read_text())["reward_function"] == reward.read_text()
    assert model.read_bytes() == b"weights"
    assert json.loads((root / "training_metrics.json").read_text()) == metrics
    assert json.loads((root / "session_saved_models" / "model_history.json").read_text())["runs"] == \
        history["runs"]

    bad = tmp_path / "bad.py"
    bad.write_text("def reward_function(params):\n    return 1 +\n")
    for args, message in [
        (("set", "s"), "nothing to change"),
        (("set", "s", "--lr", "0.005"), "nothing to change"),
        (("set", "s", "--lr", "60"), "--lr 60 is not valid"),
        (("set", "s", "--reward-file", str(bad)), f"--reward-file {bad}"),
        (("set", "s", "--model", "[[5, 16], [16, 3]]"), "create NEW_SESSION --model"),
        (("set", "nosuch", "--lr", "0.1"), "no session 'nosuch'"),
    ]:
        result = cli(tmp_path, *args, check=False)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    assert json.loads((root / "agent_params.json").read_text()) == agent
    assert "line 2" in cli(tmp_path, "set", "s", "--reward-file", str(bad), check=False).stderr


def test_a_warm_start_reports_this_runs_steps_and_speed(tmp_path: Path) -> None:
    cli(tmp_path, "create", "w", "--episodes", "2")
    cli(tmp_path, "train", "w", "--cars", "4")
    warm = cli(tmp_path, "train", "w", "--cars", "4").stdout
    runs = json.loads((tmp_path / "w" / "session_saved_models" / "model_history.json").read_text())["runs"]
    assert "Warm start" in warm and len(runs) == 2
    total = runs[0]["steps"] + runs[1]["steps"]
    assert "Training finished: 2 episodes, record" in warm
    assert f" {runs[1]['steps']:,} steps in " in warm and f"(4 episodes, {total:,} steps in all)" in warm



CLASSIC_KEYS = ["environment_name", "environment_world", "mode", "car_speed"]


def one_line(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_create_a_racing_car_and_its_network_follows(tmp_path: Path) -> None:
    created = cli(tmp_path, "create", "d", "--action-space", "discrete", "--actions", "-30:1.5,0:4,30:1.5",
                  "--track", "2").stdout
    assert "discrete (3 actions) car" in created and "[[6, 64], [64, 64], [64, 3]]" in created
    env = json.loads((tmp_path / "d" / "env_params.json").read_text())
    actions = [{"steering_angle": -30.0, "speed": 1.5}, {"steering_angle": 0.0, "speed": 4.0},
               {"steering_angle": 30.0, "speed": 1.5}]
    assert env == {"environment_name": "car-race", "environment_world": 2, "mode": "training",
                   "car_speed": 20, "action_space": "discrete", "actions": actions}
    agent = json.loads((tmp_path / "d" / "agent_params.json").read_text())
    assert agent["model_configuration"] == "[[6, 64], [64, 64], [64, 3]]"
    cli(tmp_path, "create", "c", "--action-space", "continuous", "--speed-range", "1:3.5",
        "--model", "[[6, 32], [32, 2]]")
    assert json.loads((tmp_path / "c" / "env_params.json").read_text())["speed_range"] == [1.0, 3.5]
    assert json.loads((tmp_path / "c" / "agent_params.json").read_text())["model_configuration"] == \
        "[[6, 32], [32, 2]]"
    cli(tmp_path, "create", "k")  # the classic car: the original files
    assert list(json.loads((tmp_path / "k" / "env_params.json").read_text())) == CLASSIC_KEYS
    assert json.loads((tmp_path / "k" / "agent_params.json").read_text())["model_configuration"] == \
        "[[5, 9], [9, 3]]"


DISCRETE = ("--action-space", "discrete")
CONTINUOUS = ("--action-space", "continuous")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--action-space", "racing"),
         "--action-space 'racing' is not valid: use 'classic', 'discrete' or 'continuous'"),
        ((*DISCRETE, "--actions", "-30:1.5,0:9"),
         "--actions: actions[1].speed = 9 is not valid: use a speed from 0.5 to 4 m/s"),
        ((*DISCRETE, "--actions", "45:2,0:2"),
         "--actions: actions[0].steering_angle = 45 is not valid: use an angle from -30 to 30 degrees"),
        ((*DISCRETE, "--actions", "0:2"), "--actions '0:2' is not valid: give from 2 to 64 actions, not 1"),
        ((*DISCRETE, "--actions", "0:2,0:2"), "it is the same action as actions[0]"),
        (("--actions", "0:2,9:2"),
         "--actions 0:2,9:2 is for the discrete car only, and the car is the classic car: add --action-space "
         "discrete"),
        ((*DISCRETE, "--speed-range", "1:2"), "--speed-range 1:2 is for the continuous car only"),
        ((*CONTINUOUS, "--speed-range", "3:1"),
         "--speed-range '3:1' is not valid: use [min, max] speeds in m/s with 0.5 <= min < max <= 4"),
        ((*DISCRETE, "--model", "[[5, 9], [9, 3]]"),
         "--model '[[5, 9], [9, 3]]' is not valid: the first layer must take 6 inputs (5 radars and the "
         "speed, for the discrete car), not 5"),
        ((*CONTINUOUS, "--model", "[[6, 9], [9, 3]]"),
         "the last layer must give 2 outputs (the steering angle and the speed, for the continuous car), "
         "not 3"),
        (("--model", "[[6, 9], [9, 3]]"),
         "--model '[[6, 9], [9, 3]]' is not valid: the first layer must take 5 inputs (the radars, for the "
         "classic car), not 6"),
    ],
)
def test_bad_cars_are_named_by_their_flags_and_nothing_is_created(tmp_path: Path, args: tuple[str, ...],
                                                                 message: str) -> None:
    result = runner.invoke(cli_module.app, ["--home", str(tmp_path), "create", "bad", *args],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert message in one_line(result.output), result.output
    assert not (tmp_path / "bad").exists()


def test_set_changes_the_car_and_the_network_follows_unless_chosen(tmp_path: Path) -> None:
    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli_module.app, ["--home", str(tmp_path), *args], env={"COLUMNS": "300"})
        return result.exit_code, one_line(result.output)

    def files(session: str) -> tuple[dict, dict]:
        return (json.loads((tmp_path / session / "env_params.json").read_text()),
                json.loads((tmp_path / session / "agent_params.json").read_text()))

    assert run("create", "s", "--lr", "0.02")[0] == 0
    assert run("set", "s", "--action-space", "discrete", "--actions", "0:2,20:2")[0] == 0
    env, agent = files("s")
    assert env["action_space"] == "discrete" and len(env["actions"]) == 2
    assert agent["model_configuration"] == "[[6, 64], [64, 64], [64, 2]]" and agent["learning_rate"] == 0.02
    assert run("set", "s", "--actions", "0:2,20:2,-20:2")[0] == 0  # the car's own actions, new ones
    assert files("s")[1]["model_configuration"] == "[[6, 64], [64, 64], [64, 3]]"
    code, shown = run("set", "s", "--speed-range", "1:2")
    assert code == 2 and "is for the continuous car only, and the car of session 's' is the discrete" in shown
    assert run("set", "s", "--action-space", "continuous")[0] == 0  # the actions do not follow
    env, agent = files("s")
    assert "actions" not in env and env["speed_range"] == [0.5, 4.0]
    assert agent["model_configuration"] == "[[6, 64], [64, 64], [64, 2]]"
    assert run("set", "s", "--model", "[[6, 32], [32, 2]]")[0] == 0
    # A network the user chose is not replaced: the new car needs --model.
    code, shown = run("set", "s", "--action-space", "classic")
    assert code == 2
    assert ("--action-space classic: the session's network [[6, 32], [32, 2]] is not one for the classic "
            "car, whose network takes 5 inputs and gives 3 outputs: add --model '[[5, 32], [32, 3]]'"
            ) in shown
    assert files("s")[0]["action_space"] == "continuous"
    back = ("--action-space", "classic", "--model", "[[5, 32], [32, 3]]", "--lr", "0.03")
    assert run("set", "s", *back)[0] == 0
    env, agent = files("s")
    assert list(env) == CLASSIC_KEYS
    assert agent["model_configuration"] == "[[5, 32], [32, 3]]" and agent["learning_rate"] == 0.03
    # A trained model keeps its car, as it keeps its network.
    (tmp_path / "s" / "session_saved_models" / "model.pth").write_bytes(b"weights")
    code, shown = run("set", "s", "--action-space", "discrete")
    assert code == 2 and "changes the car of session 's', whose trained model drives the classic car" in shown
    assert "rewards-api create NEW_SESSION --action-space discrete" in shown
    assert list(files("s")[0]) == CLASSIC_KEYS


def test_train_refuses_the_continuous_car_and_a_network_of_another_car(tmp_path: Path) -> None:
    cli(tmp_path, "create", "c", "--action-space", "continuous")
    training_file = tmp_path / "c" / "training_params.json"
    training = json.loads(training_file.read_text())
    training_file.write_text(json.dumps({**training, "learning_algorithm": "dqn"}))  # edited by hand
    result = cli(tmp_path, "train", "c", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    shown = one_line(result.stderr)
    assert "the continuous car needs PPO" in shown and "action_space 'discrete'" in shown
    assert "--algorithm 'dqn' is not valid" in shown and "rewards-api set c" in shown
    assert "torch" not in heavy_imports("--home", str(tmp_path), "train", "c")  # refused before PyTorch
    cli(tmp_path, "create", "d", "--action-space", "discrete")
    agent_file = tmp_path / "d" / "agent_params.json"
    agent = json.loads(agent_file.read_text())
    agent_file.write_text(json.dumps({**agent, "model_configuration": "[[5, 9], [9, 3]]"}))  # edited by hand
    result = cli(tmp_path, "train", "d", check=False)
    shown = one_line(result.stderr)
    assert result.returncode == 2
    assert ("--model '[[5, 9], [9, 3]]' is not valid: the first layer must take 6 inputs (5 radars and the "
            "speed, for the discrete car), not 5") in shown, shown
    assert "gives 15 outputs, such as [[6, 9], [9, 15]]" in shown


# ----- PPO: --algorithm and its hyper-parameters -----------------------------------------------------------


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``rewards-api --home tmp_path ARGS`` in this process: (exit code, output on one line)."""
    monkeypatch.setattr(cli_module.console, "width", 300)
    monkeypatch.setattr(cli_module.errors, "width", 300)

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli_module.app, ["--home", str(tmp_path), *args], env={"COLUMNS": "300"})
        return result.exit_code, one_line(result.output)

    return invoke


def session_file(home: Path, session: str, name: str) -> dict:
    return json.loads((home / session / f"{name}.json").read_text())


def test_create_ppo_writes_the_algorithm_ppos_defaults_and_the_typed_keys(tmp_path: Path, run) -> None:
    from rewards_api.params import PPO_DEFAULTS

    code, shown = run("create", "p", "--algorithm", "PPO", "--clip-range", "0.3", "--epochs", "2",
                      "--batch-size", "512", "--entropy", "0", "--rollout-length", "64", "--gae-lambda",
                      "0.9", "--no-normalize-rewards")
    assert code == 0, shown
    assert "ppo (batch 512 · epochs 2 · entropy 0 · rollout 64 · clip 0.3 · gae-lambda 0.9)" in shown
    assert "epsilon" not in shown and "rewards not normalized" in shown
    training = session_file(tmp_path, "p", "training_params")
    assert training["learning_algorithm"] == "ppo" and "def reward_function" in training["reward_function"]
    assert session_file(tmp_path, "p", "agent_params") == {
        "model_configuration": "[[5, 9], [9, 3]]", "loss_fn": "mse", "optimizer": "adam", "gamma": 0.9,
        "epsilon": 20, **PPO_DEFAULTS, "normalize_rewards": False, "batch_size": 512, "num_epochs": 2,
        "beta_entropy": 0, "rollout_length": 64, "clip_range": 0.3, "gae_lambda": 0.9}
    # What is typed is kept; a DQN session's files are the original ones.
    assert run("create", "q", "--algorithm", "ppo", "--lr", "0.001", "--episodes", "50")[0] == 0
    agent = session_file(tmp_path, "q", "agent_params")
    assert (agent["learning_rate"], agent["num_episodes"]) == (0.001, 50) and "clip_range" not in agent
    assert run("create", "d")[0] == 0
    assert session_file(tmp_path, "d", "training_params")["learning_algorithm"] == "dqn"
    assert set(session_file(tmp_path, "d", "agent_params")) == {
        "model_configuration", "learning_rate", "loss_fn", "optimizer", "gamma", "epsilon", "num_episodes"}
    # info and sessions show the algorithm.
    code, shown = run("info", "p")
    assert code == 0 and "algorithm ppo (batch 512" in shown and "epsilon" not in shown
    code, shown = run("sessions")
    assert code == 0 and re.search(r"│ d │ 1 │ dqn │", shown) and re.search(r"│ p │ 1 │ ppo │", shown)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--clip-range", "0"), "--clip-range 0 is not valid: use a number greater than 0 and at most 1"),
        (("--algorithm", "sac"), "--algorithm 'sac' is not valid: use 'dqn' or 'ppo'"),
        (("--epochs", "0"), "--epochs 0 is not valid: use a whole number from 1 to 100"),
        (("--batch-size", "8"), "--batch-size 8 is not valid: use a whole number from 16 to 65536"),
        (("--entropy", "2"), "--entropy 2 is not valid: use a number from 0 to 1"),
        (("--rollout-length", "2"), "--rollout-length 2 is not valid"),
        (("--gae-lambda", "1.5"), "--gae-lambda 1.5 is not valid"),
    ],
)
def test_bad_ppo_flags_are_named_as_typed(tmp_path: Path, run, args: tuple[str, ...], message: str) -> None:
    code, shown = run("create", "bad", "--algorithm", "ppo", *args)
    assert code == 2 and message in shown, shown
    assert not re.search(r"\b(clip_range|learning_algorithm|num_epochs|batch_size|beta_entropy|"
                         r"rollout_length|gae_lambda)\b", shown), shown
    assert not (tmp_path / "bad").exists()
    assert run("create", "good")[0] == 0
    code, shown = run("set", "good", *args)
    assert code == 2 and message in shown, shown
    assert session_file(tmp_path, "good", "training_params")["learning_algorithm"] == "dqn"


def test_the_continuous_car_trains_with_ppo_and_refuses_dqn(tmp_path: Path, run) -> None:
    code, shown = run("create", "c", "--action-space", "continuous")
    assert code == 0 and "The continuous car trains with PPO (DQN cannot drive it): --algorithm ppo" in shown
    assert session_file(tmp_path, "c", "training_params")["learning_algorithm"] == "ppo"
    assert session_file(tmp_path, "c", "agent_params")["learning_rate"] == 0.0003
    code, shown = run("create", "c2", "--action-space", "continuous", "--algorithm", "dqn")
    assert code == 2 and "--algorithm 'dqn' is not valid: the continuous car needs PPO" in shown, shown
    assert not (tmp_path / "c2").exists()
    code, shown = run("set", "c", "--algorithm", "dqn")
    assert code == 2 and "--algorithm 'dqn' is not valid: the continuous car needs PPO" in shown
    assert session_file(tmp_path, "c", "training_params")["learning_algorithm"] == "ppo"
    code, shown = run("create", "k", "--action-space", "discrete")  # a car DQN drives: DQN, unless asked
    assert code == 0 and "trains with PPO" not in shown
    assert session_file(tmp_path, "k", "training_params")["learning_algorithm"] == "dqn"


def test_set_algorithm_says_a_trained_session_starts_a_new_model_and_changes_nothing_else(tmp_path: Path,
                                                                                         run) -> None:
    reward = tmp_path / "reward.py"
    reward.write_text("def reward_function(params):\n    return 2.0\n")
    assert run("create", "u", "--reward-file", str(reward), "--episodes", "40")[0] == 0
    agent = session_file(tmp_path, "u", "agent_params")
    code, shown = run("set", "u", "--algorithm", "ppo")  # no model yet: nothing to replace
    assert code == 0 and "Changed --algorithm of session u" in shown and "new ppo model" not in shown
    assert "Hint: lr 0.01 is DQN's default, kept as stored; PPO's: rewards-api set u --lr 0.0003" in shown
    assert session_file(tmp_path, "u", "agent_params") == agent  # lr and episodes as they were
    training = session_file(tmp_path, "u", "training_params")
    assert training["learning_algorithm"] == "ppo" and training["reward_function"] == reward.read_text()

    assert run("create", "t")[0] == 0
    model = tmp_path / "t" / "session_saved_models" / "model.pth"
    model.write_bytes(b"weights")  # a trained session (SessionPaths.model)
    code, shown = run("set", "t", "--algorithm", "ppo")
    assert code == 0, shown
    assert ("Session 't' has a trained dqn model: its next training starts a new ppo model (the dqn model, "
            "its metrics and its checkpoint are replaced then; nothing is lost until then") in shown
    assert "--lr 0.0003 --episodes 30000" in shown and model.read_bytes() == b"weights"
    assert run("set", "t", "--algorithm", "ppo")[1].startswith("error: nothing to change")
    code, shown = run("set", "t", "--algorithm", "dqn", "--lr", "0.02")
    # Back to the algorithm that trained the model, before training again: the model carries on.
    assert code == 0 and "new dqn model" not in shown and "has a trained" not in shown and "Hint" not in shown
    code, shown = run("set", "t", "--lr", "0.0003", "--algorithm", "ppo")  # PPO's lr typed: no hint for it
    assert code == 0 and "--episodes 30000" in shown and "--lr 0.0003 --episodes" not in shown


def test_train_a_ppo_session(tmp_path: Path, run) -> None:
    import torch

    assert run("create", "p", "--algorithm", "ppo", "--episodes", "40", "--batch-size", "64",
               "--rollout-length", "16")[0] == 0
    code, shown = run("train", "p", "--cars", "8", "--seconds", "20")
    assert code == 0, shown
    assert "A new ppo model on training-1 with 8 cars: episodes 1-40" in shown
    assert "Training finished: 40 episodes" in shown
    state = torch.load(tmp_path / "p" / "session_saved_models" / "model.pth", weights_only=True)
    assert state
    code, shown = run("train", "--help")
    assert code == 0 and "Cars driving at once (default: 64 for DQN, 256 for PPO)." in shown
