"""The racing cars' session parameters through a real server: the car in env_params.json, the network that
follows it, the checks that name the numbers, and the classic sessions' files exactly as before."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server

from rewards_api.envs.physics import DEFAULT_ACTIONS
from rewards_api.params import ParameterError
from rewards_api.store import SessionStore, atomic_write_json

V1 = "/api/v1"
CLASSIC_KEYS = ["environment_name", "environment_world", "mode", "car_speed"]
REWARD = "def reward_function(params):\n    return 1.0 if params['is_alive'] else 0.0\n"


def new_session(api: httpx.Client, prefix: str = "race") -> str:
    session = f"{prefix}_{uuid.uuid4().hex[:8]}"
    assert api.post(f"{V1}/create_session", params={"session_id": session}).status_code == 200
    return session


def env_body(session: str, **car: Any) -> dict[str, Any]:
    return {"session_id": session, "environment_name": "car-race", "environment_world": 2, "mode": "training",
            "car_speed": 20, **car}


def files(server: Server, session: str) -> dict[str, bytes]:
    root = server.home / session
    return {path.name: path.read_bytes() for path in sorted(root.glob("*.json"))} | {
        "model_history.json": (root / "session_saved_models" / "model_history.json").read_bytes()}


def written_as_before(tmp_path: Path, data: dict[str, Any]) -> bytes:
    """The bytes the store wrote for ``data`` before the racing cars (the same writer, the same dict)."""
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    atomic_write_json(path, data)
    return path.read_bytes()


def refusal(answer: httpx.Response) -> tuple[str, str]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["status"] == 422 and body["message"] == body["detail"] == body["errors"][0]["message"]
    return body["errors"][0]["parameter"], body["message"]


def test_the_original_uis_requests_store_exactly_what_they_did(api: httpx.Client, server: Server,
                                                              tmp_path: Path) -> None:
    session = new_session(api, "classic")
    answer = api.post(f"{V1}/write_env_params", json=env_body(session))
    assert answer.json() == {"status": 200, "message": "env_params.json written",
                             "env_params": {"environment_name": "car-race", "environment_world": 2,
                                            "mode": "training", "car_speed": 20}}
    agent = {"session_id": session, "model_configuration": json.dumps("[[5, 9], [9, 3]]"),
             "learning_rate": 0.05, "loss_fn": "mae", "optimizer": "rmsprop", "gamma": 0.8, "epsilon": 35,
             "num_episodes": 250}
    assert api.post(f"{V1}/write_agent_params", json=agent).status_code == 200
    root = server.home / session
    env_file = json.loads((root / "env_params.json").read_text())
    assert list(env_file) == CLASSIC_KEYS
    assert (root / "env_params.json").read_bytes() == written_as_before(tmp_path, env_file)
    stored_agent = {key: value for key, value in agent.items() if key != "session_id"}
    stored_agent["model_configuration"] = "[[5, 9], [9, 3]]"  # encoded once, as before
    assert (root / "agent_params.json").read_bytes() == written_as_before(tmp_path, stored_agent)
    before = files(server, session)
    # Saving the same model again (the UI does on every "Save Changes") changes nothing but last_created.
    assert api.post(f"{V1}/write_env_params", json=env_body(session)).status_code == 200
    after = files(server, session)
    assert after["env_params.json"] == before["env_params.json"]
    assert after["agent_params.json"] == before["agent_params.json"]
    params = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()
    assert list(params["env_params"]) == CLASSIC_KEYS


def test_a_discrete_car_round_trip_and_its_network_follows(api: httpx.Client, server: Server) -> None:
    session = new_session(api)
    answer = api.post(f"{V1}/write_env_params", json=env_body(session, action_space="Discrete",
                                                               actions="-30:1.5, 0:4, 30:1.5"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    actions = [{"steering_angle": -30.0, "speed": 1.5}, {"steering_angle": 0.0, "speed": 4.0},
               {"steering_angle": 30.0, "speed": 1.5}]
    assert body["env_params"] == {"environment_name": "car-race", "environment_world": 2, "mode": "training",
                                  "car_speed": 20, "action_space": "discrete", "actions": actions}
    # No agent params yet: the session gets them, with the discrete car's default network (3 actions).
    assert body["agent_params"]["model_configuration"] == "[[6, 64], [64, 64], [64, 3]]"
    assert "[[6, 64], [64, 64], [64, 3]]" in body["message"]
    stored = api.get(f"{V1}/get_all_params", params={"session_id": session}).json()
    assert stored["env_params"] == body["env_params"] and stored["agent_params"] == body["agent_params"]

    # The same car as JSON text, as a list of pairs and as objects: the same file.
    for form in (json.dumps(actions), [[-30, 1.5], [0, 4], [30, 1.5]], actions):
        again = api.post(f"{V1}/write_env_params", json=env_body(session, action_space="discrete",
                                                                  actions=form))
        assert again.json()["env_params"] == body["env_params"] and "agent_params" not in again.json()

    # A network for the classic car is refused for this session, naming what the discrete car needs.
    parameter, message = refusal(api.post(f"{V1}/write_agent_params", json={
        "session_id": session, "model_configuration": "[[5, 16], [16, 3]]"}))
    assert parameter == "model_configuration"
    assert "the first layer must take 6 inputs (5 radars and the speed, for the discrete car), not 5" \
        in message
    assert "takes 6 inputs and gives 3 outputs, such as [[6, 16], [16, 3]]" in message
    parameter, message = refusal(api.post(f"{V1}/write_agent_params", json={
        "session_id": session, "model_configuration": "[[6, 16], [16, 15]]"}))
    assert "the last layer must give 3 outputs (one for each of the discrete car's 3 actions), not 15" \
        in message
    ok = api.post(f"{V1}/write_agent_params", json={"session_id": session, "model_configuration": [[6, 16],
                                                                                                  [16, 3]]})
    assert ok.status_code == 200, ok.text
    assert json.loads((server.home / session / "agent_params.json").read_text())["model_configuration"] == [
        [6, 16], [16, 3]]


def test_the_default_car_grid_and_the_continuous_car(api: httpx.Client, server: Server) -> None:
    session = new_session(api)
    body = api.post(f"{V1}/write_env_params", json=env_body(session, action_space="discrete")).json()
    assert body["env_params"]["actions"] == [action.as_dict() for action in DEFAULT_ACTIONS]
    assert body["agent_params"]["model_configuration"] == "[[6, 64], [64, 64], [64, 15]]"
    # The default network follows a new car; the discrete car's actions do not.
    body = api.post(f"{V1}/write_env_params", json=env_body(session, action_space="continuous",
                                                             speed_range="1:3.5")).json()
    assert body["env_params"] == {**{key: body["env_params"][key] for key in CLASSIC_KEYS},
                                  "action_space": "continuous", "speed_range": [1.0, 3.5]}
    assert body["agent_params"]["model_configuration"] == "[[6, 64], [64, 64], [64, 2]]"
    # And back to the classic car: the original four keys, and the original default network.
    body = api.post(f"{V1}/write_env_params", json=env_body(session)).json()
    assert list(body["env_params"]) == CLASSIC_KEYS
    assert body["agent_params"]["model_configuration"] == "[[5, 9], [9, 3]]"
    assert list(json.loads((server.home / session / "env_params.json").read_text())) == CLASSIC_KEYS


@pytest.mark.parametrize(
    ("car", "parameter", "message"),
    [
        ({"action_space": "racing"}, "action_space",
         "action_space = 'racing' is not valid: use 'classic', 'discrete' or 'continuous'"),
        ({"action_space": "discrete", "actions": "-30:1.5, 0:9"}, "actions[1].speed",
         "actions[1].speed = 9 is not valid: use a speed from 0.5 to 4 m/s"),
        ({"action_space": "discrete", "actions": [{"steering_angle": 45, "speed": 2}, {"steering_angle": 0,
                                                                                        "speed": 2}]},
         "actions[0].steering_angle",
         "actions[0].steering_angle = 45 is not valid: use an angle from -30 to 30 degrees (+ is left)"),
        ({"action_space": "discrete", "actions": "0:2"}, "actions", "give from 2 to 64 actions, not 1"),
        ({"action_space": "discrete", "actions": "0:2, 15:2, 0:2"}, "actions[2]",
         "it is the same action as actions[0]: each action must differ"),
        ({"action_space": "discrete", "actions": "[[0, 2], "}, "actions", "it is not valid JSON"),
        ({"action_space": "discrete", "actions": [{"angle": 0, "speed": 2}, [5, 2]]}, "actions[0]",
         "write each action as angle:speed"),
        ({"action_space": "continuous", "speed_range": "3:1"}, "speed_range",
         "speed_range = '3:1' is not valid: use [min, max] speeds in m/s with 0.5 <= min < max <= 4"),
        ({"action_space": "continuous", "speed_range": [0.1, 4]}, "speed_range", "0.5 <= min < max <= 4"),
        ({"action_space": "continuous", "actions": "0:2, 15:2"}, "actions",
         "it is for the discrete car only: leave it out for the continuous car, or choose action_space "
         "'discrete'"),
        ({"speed_range": [1, 2]}, "speed_range", "it is for the continuous car only"),
        ({"action_space": "discrete", "model_configuration": "[[6, 9], [9"}, "model_configuration",
         "it is not valid JSON"),
    ],
)
def test_bad_cars_are_refused_naming_the_value_and_nothing_is_written(
        api: httpx.Client, server: Server, car: dict[str, Any], parameter: str, message: str) -> None:
    session = new_session(api, "bad")
    assert api.post(f"{V1}/write_env_params", json=env_body(session)).status_code == 200
    before = files(server, session)
    got_parameter, got_message = refusal(api.post(f"{V1}/write_env_params", json=env_body(session, **car)))
    assert got_parameter == parameter and message in got_message, got_message
    assert files(server, session) == before


def test_a_chosen_network_is_never_replaced_silently(api: httpx.Client, server: Server) -> None:
    session = new_session(api)
    chosen = {"session_id": session, "model_configuration": "[[5, 32], [32, 3]]", "learning_rate": 0.02}
    assert api.post(f"{V1}/write_agent_params", json=chosen).status_code == 200
    history_path = server.home / session / "session_saved_models" / "model_history.json"
    history = json.loads(history_path.read_text())
    history["runs"] = [{"start": "fresh", "episodes": 3}]
    history_path.write_text(json.dumps(history))
    before = files(server, session)
    parameter, message = refusal(api.post(f"{V1}/write_env_params", json=env_body(session,
                                                                                    action_space="discrete")))
    assert parameter == "model_configuration"
    assert "takes 6 inputs and gives 15 outputs, such as [[6, 32], [32, 15]]" in message
    assert "send that network as model_configuration with these env params" in message
    assert files(server, session) == before
    # The network for the new car, sent with it: both files written, the other agent params kept, and the
    # runs of the classic car's model gone (a new car is a new model).
    answer = api.post(f"{V1}/write_env_params", json=env_body(session, action_space="discrete",
                                                               model_configuration="[[6, 32], [32, 15]]"))
    assert answer.status_code == 200, answer.text
    agent = json.loads((server.home / session / "agent_params.json").read_text())
    assert agent["model_configuration"] == "[[6, 32], [32, 15]]" and agent["learning_rate"] == 0.02
    assert "runs" not in json.loads(history_path.read_text())
    assert "model_configuration" not in json.loads((server.home / session / "env_params.json").read_text())
    # A network sent for the wrong car is refused the same way.
    parameter, message = refusal(api.post(f"{V1}/write_env_params", json=env_body(
        session, action_space="continuous", model_configuration="[[6, 32], [32, 15]]")))
    assert "the last layer must give 2 outputs (the steering angle and the speed, for the continuous car), " \
           "not 15" in message


def test_new_actions_are_a_new_model_even_with_the_same_network(api: httpx.Client, server: Server) -> None:
    session = new_session(api)
    assert api.post(f"{V1}/write_env_params", json=env_body(session, action_space="discrete",
                                                               actions="-20:1, 20:1")).status_code == 200
    history_path = server.home / session / "session_saved_models" / "model_history.json"
    history = json.loads(history_path.read_text())
    history["runs"] = [{"start": "fresh", "episodes": 3}]
    history_path.write_text(json.dumps(history))
    # Another car parameter (car_speed: the stream's frames a second) keeps the model and its runs.
    faster = env_body(session, action_space="discrete", actions="-20:1, 20:1", car_speed=30)
    assert "agent_params" not in api.post(f"{V1}/write_env_params", json=faster).json()
    assert json.loads(history_path.read_text())["runs"] == history["runs"]
    # Two other actions: the same network fits, but its outputs mean other actions now.
    answer = api.post(f"{V1}/write_env_params", json=env_body(session, action_space="discrete",
                                                               actions="-20:3, 20:3"))
    assert answer.status_code == 200 and "agent_params" not in answer.json()
    assert "runs" not in json.loads(history_path.read_text())


def test_a_continuous_session_is_refused_at_training_start(api: httpx.Client, server: Server) -> None:
    session = new_session(api)
    assert api.post(f"{V1}/write_env_params", json=env_body(session, action_space="continuous")).status_code \
        == 200
    assert api.post(f"{V1}/write_training_params", json={
        "session_id": session, "learning_algorithm": "dqn", "enable_wandb": False,
        "reward_function": REWARD}).status_code == 200
    refused = api.post(f"{V1}/train", params={"session_id": session})
    assert refused.status_code == 422, refused.text
    parameter, message = refusal(refused)
    assert parameter == "learning_algorithm"
    assert "the continuous car needs PPO" in message and "action_space 'discrete'" in message
    assert api.get(f"{V1}/jobs/{session}").status_code == 404  # no job was queued


def test_load_setup_refuses_an_inconsistent_session(tmp_path: Path) -> None:
    from rewards_api.runs.train import load_setup

    store = SessionStore(tmp_path)
    store.create("s")
    root = tmp_path / "s"
    (root / "env_params.json").write_text(json.dumps({"action_space": "discrete", "actions": "0:2, 30:2"}))
    (root / "agent_params.json").write_text(json.dumps({"model_configuration": "[[5, 9], [9, 3]]"}))
    with pytest.raises(ParameterError) as caught:
        load_setup(store, "s")
    assert caught.value.parameter == "model_configuration"
    assert "must take 6 inputs (5 radars and the speed, for the discrete car), not 5" in str(caught.value)
    assert "takes 6 inputs and gives 2 outputs, such as [[6, 9], [9, 2]]" in str(caught.value)
    # Without agent params, the car's default network.
    (root / "agent_params.json").unlink()
    assert load_setup(store, "s").config.layers == [(6, 64), (64, 64), (64, 2)]
    (root / "env_params.json").write_text(json.dumps({"action_space": "continuous"}))
    with pytest.raises(ParameterError, match="the continuous car needs PPO"):
        load_setup(store, "s")
    (root / "env_params.json").write_text(json.dumps({"environment_world": 2}))  # an old session: classic
    setup = load_setup(store, "s")
    assert setup.env.action_space == "classic" and setup.config.layers == [(5, 9), (9, 3)]
