"""Parameters: what is accepted, what is stored (as sent), and messages that name the parameter and value."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any

import pydantic
import pytest

from rewards_api.envs.reward import DEFAULT_REWARD_SOURCE, RewardFunctionError
from rewards_api.params import (
    DEFAULT_AGENT_PARAMS,
    DEFAULT_ENV_PARAMS,
    DEFAULT_MODEL_CONFIGURATION,
    DEFAULT_TRAINING_PARAMS,
    AgentConfig,
    AgentParams,
    EnvParams,
    ParameterError,
    TrainingParams,
    as_fraction,
    check_reward_function,
    first_error_message,
    parse_model_configuration,
    validation_errors,
)


def refused(model: type[pydantic.BaseModel], **values: Any) -> list[dict[str, str]]:
    with pytest.raises(pydantic.ValidationError) as caught:
        model(**values)
    return validation_errors(caught.value)


def only_message(model: type[pydantic.BaseModel], **values: Any) -> str:
    errors = refused(model, **values)
    assert len(errors) == 1, errors
    return errors[0]["message"]


def test_defaults_are_the_original_uis() -> None:
    assert DEFAULT_ENV_PARAMS.model_dump() == {"environment_name": "car-race", "environment_world": 1,
                                               "mode": "training", "car_speed": 20}
    assert DEFAULT_AGENT_PARAMS.model_dump() == {
        "model_configuration": "[[5, 9], [9, 3]]", "learning_rate": 0.01, "loss_fn": "mse",
        "optimizer": "adam", "gamma": 0.9, "epsilon": 20, "num_episodes": 700}
    assert DEFAULT_TRAINING_PARAMS.model_dump() == {"learning_algorithm": "dqn", "enable_wandb": False,
                                                    "reward_function": DEFAULT_REWARD_SOURCE}
    # The defaults pass their own checks.
    assert EnvParams(**DEFAULT_ENV_PARAMS.model_dump()) == DEFAULT_ENV_PARAMS
    assert AgentParams(**DEFAULT_AGENT_PARAMS.model_dump()) == DEFAULT_AGENT_PARAMS
    assert TrainingParams(**DEFAULT_TRAINING_PARAMS.model_dump()) == DEFAULT_TRAINING_PARAMS
    with pytest.raises(pydantic.ValidationError):
        DEFAULT_AGENT_PARAMS.gamma = 0.5  # type: ignore[misc]


def test_parameter_error_names_parameter_value_and_what_is_accepted() -> None:
    error = ParameterError("learning_rate", 60, "use a number greater than 0 and at most 1.5")
    assert str(error) == "learning_rate = 60 is not valid: use a number greater than 0 and at most 1.5"
    assert isinstance(error, ValueError)
    assert (error.parameter, error.value, error.accepted) == ("learning_rate", 60, error.accepted)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)


# -- the seed's example and values as sent ---------------------------------------------------------------


def test_the_seeds_example() -> None:
    seed = {"model_configuration": "[[5, 9], [9, 3]]", "learning_rate": 60, "loss_fn": "mse",
            "optimizer": "adam", "gamma": 90, "epsilon": 20, "num_episodes": 100}
    assert only_message(AgentParams, **seed) == (
        "learning_rate = 60 is not valid: use a number greater than 0 and at most 1.5")
    agent = AgentParams(**{**seed, "learning_rate": 0.01})
    assert agent.model_dump(mode="json") == {**seed, "learning_rate": 0.01}
    assert isinstance(agent.model_dump(mode="json")["gamma"], int)
    config = agent.config()
    assert config == AgentConfig(layers=[(5, 9), (9, 3)], learning_rate=0.01, loss_fn="mse", optimizer="adam",
                                 gamma=0.9, epsilon=0.2, num_episodes=100)


def test_the_original_uis_fraction_is_kept() -> None:
    agent = AgentParams(gamma=0.9, epsilon=0.2)
    assert (agent.gamma, agent.epsilon) == (0.9, 0.2)
    assert (agent.config().gamma, agent.config().epsilon) == (0.9, 0.2)


@pytest.mark.parametrize("value", ["[[5,49],[49,3]]", [[5, 49], [49, 3]], ((5, 49), (49, 3))])
def test_model_configuration_as_text_or_list(value: Any) -> None:
    agent = AgentParams(model_configuration=value)
    assert agent.config().layers == [(5, 49), (49, 3)]
    stored = agent.model_dump(mode="json")["model_configuration"]
    assert stored == ("[[5,49],[49,3]]" if isinstance(value, str) else [[5, 49], [49, 3]])


def test_choices_are_matched_without_case() -> None:
    agent = AgentParams(loss_fn="MSE", optimizer=" Adam ")
    assert (agent.loss_fn, agent.optimizer) == ("mse", "adam")
    assert EnvParams(mode="Evaluation").mode == "evaluation"
    assert TrainingParams(learning_algorithm="DQN").learning_algorithm == "dqn"
    for loss in ("mse", "rmse", "mae", "huber"):
        assert AgentParams(loss_fn=loss).config().loss_fn == loss
    for optimizer in ("adam", "rmsprop", "adagrad"):
        assert AgentParams(optimizer=optimizer).optimizer == optimizer


# -- model_configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[[4,9],[9,3]]", "the first layer must take 5 inputs (the radars), not 4"),
        ("[[5,9],[8,3]]", "layer 2 takes 8 inputs but layer 1 gives 9"),
        ("[[5,9],[9,4]]", "the last layer must give 3 outputs (the actions), not 4"),
        ([[5, 3]], None),
        ("[]", "write it as JSON"),
        ("[[5,9,3]]", "layer 1 must be an [inputs, outputs] pair"),
        ("[[5,0],[0,3]]", "sizes must be whole numbers from 1 to 1024"),
        ("[[5,2000],[2000,3]]", "sizes must be whole numbers from 1 to 1024"),
        ("[[5,9.5],[9.5,3]]", "sizes must be whole numbers"),
        ("[[5,true],[true,3]]", "sizes must be whole numbers"),
        (str([[5, 4]] + [[4, 4]] * 15 + [[4, 3]]), "use at most 16 layers, not 17"),
        ('{"a": 1}', "write it as JSON"),
        ("5", "write it as JSON"),
        (5, "write it as JSON"),
        (None, "write it as JSON"),
        ("[[5, 9], [9, 3]", "it is not valid JSON"),
        ("__import__('os').system('x')", "it is not valid JSON"),
        ("[(5, 9), (9, 3)]", "it is not valid JSON"),
        ("[" * 100_000, "JSON"),
    ],
)
def test_model_configuration_rules(value: Any, problem: str | None) -> None:
    if problem is None:
        assert parse_model_configuration(value) == [(5, 3)]
        return
    with pytest.raises(ParameterError) as caught:
        parse_model_configuration(value)
    assert caught.value.parameter == "model_configuration"
    assert problem in str(caught.value)
    assert only_message(AgentParams, model_configuration=value) == str(caught.value)


def test_model_configuration_message_quotes_the_value() -> None:
    assert only_message(AgentParams, model_configuration="[[4,9],[9,3]]") == (
        "model_configuration = '[[4,9],[9,3]]' is not valid: "
        "the first layer must take 5 inputs (the radars), not 4")


def test_model_configuration_is_never_evaluated(tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    bait = f"__import__('pathlib').Path({str(marker)!r}).touch() or [[5, 3]]"
    message = only_message(AgentParams, model_configuration=bait)
    assert message.startswith("model_configuration = ") and "is not valid: it is not valid JSON" in message
    assert not marker.exists()


def test_the_original_uis_twice_encoded_default_is_accepted_and_stored_encoded_once() -> None:
    # The UI's default.json holds the layers as text, and the UI JSON.stringify's it again.
    sent = json.dumps(DEFAULT_MODEL_CONFIGURATION)
    assert sent == '"[[5, 9], [9, 3]]"'
    assert parse_model_configuration(sent) == [(5, 9), (9, 3)]
    agent = AgentParams(model_configuration=sent, learning_rate=0.5, gamma=0.75, num_episodes=42)
    assert agent.model_configuration == "[[5, 9], [9, 3]]"  # what every reader of agent_params.json expects
    assert agent.config().layers == [(5, 9), (9, 3)] and agent.config().learning_rate == 0.5
    wide = json.dumps("[[5, 128], [128, 3]]")
    assert AgentParams(model_configuration=wide).config().layers == [(5, 128), (128, 3)]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (json.dumps(json.dumps("[[5, 9], [9, 3]]")), "it is JSON-encoded three times or more"),
        (json.dumps(json.dumps(json.dumps("[[5, 9], [9, 3]]"))), "it is JSON-encoded three times or more"),
        (json.dumps("[[5, 9], [9, 3]"), "it is not valid JSON"),
        (json.dumps("[[4, 9], [9, 3]]"), "the first layer must take 5 inputs"),
        (json.dumps("__import__('os').system('x')"), "it is not valid JSON"),
        (json.dumps("5"), "write it as JSON"),
    ],
)
def test_twice_encoded_layers_get_the_same_checks(value: str, problem: str) -> None:
    message = only_message(AgentParams, model_configuration=value)
    assert message.startswith(f"model_configuration = {value!r} is not valid: ") and problem in message


def test_sixteen_layers_and_the_biggest_size_are_accepted_within_the_parameter_bound() -> None:
    assert len(parse_model_configuration([[5, 64]] + [[64, 64]] * 14 + [[64, 3]])) == 16
    assert len(parse_model_configuration([[5, 1024], [1024, 1024], [1024, 3]])) == 3


def test_a_network_over_the_parameter_bound_is_refused_naming_the_limit() -> None:
    layers = [[5, 1024]] + [[1024, 1024]] * 14 + [[1024, 3]]  # 14.7 M parameters: 59 MB a copy
    with pytest.raises(ParameterError, match=r"14,703,619 weights and biases; the limit is 2,000,000"):
        parse_model_configuration(layers)


# -- gamma and epsilon -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fraction"),
    [(0, 0.0), (0.0, 0.0), (0.5, 0.5), (1, 1.0), (1.0, 1.0), (90, 0.9), (20, 0.2), (100, 1.0), (1.5, 0.015),
     ("90", 0.9), ("0.9", 0.9)],
)
def test_fractions_and_percentages(value: Any, fraction: float) -> None:
    assert as_fraction("gamma", value) == pytest.approx(fraction)
    assert AgentParams(gamma=value, epsilon=value).config().epsilon == pytest.approx(fraction)


@pytest.mark.parametrize(
    "value", [-0.1, -5, 100.5, 1000, math.nan, math.inf, True, False, "ninety", None, [90]]
)
def test_bad_rates_are_refused(value: Any) -> None:
    with pytest.raises(ParameterError) as caught:
        as_fraction("epsilon", value)
    assert str(caught.value) == (
        f"epsilon = {value!r} is not valid: use a fraction from 0 to 1 or a percentage from 1 to 100")
    errors = refused(AgentParams, gamma=value)
    assert errors == [{"parameter": "gamma", "message": str(caught.value).replace("epsilon", "gamma", 1)}]


# -- learning_rate, num_episodes, environment ---------------------------------------------------------------


@pytest.mark.parametrize("value", [1e-6, 0.01, 1, 1.5, "0.001"])
def test_learning_rates_accepted(value: Any) -> None:
    assert AgentParams(learning_rate=value).config().learning_rate == float(value)


@pytest.mark.parametrize("value", [0, -0.01, 1.51, 60, math.nan, math.inf, True, "fast", None])
def test_learning_rates_refused(value: Any) -> None:
    assert only_message(AgentParams, learning_rate=value) == (
        f"learning_rate = {value!r} is not valid: use a number greater than 0 and at most 1.5")


@pytest.mark.parametrize(("value", "stored"), [(1, 1), (700, 700), (100_000, 100_000), (3.0, 3), ("25", 25)])
def test_num_episodes_accepted(value: Any, stored: int) -> None:
    agent = AgentParams(num_episodes=value)
    assert agent.num_episodes == stored and isinstance(agent.num_episodes, int)


@pytest.mark.parametrize("value", [0, -1, 100_001, 2.5, True, "many", None, math.inf])
def test_num_episodes_refused(value: Any) -> None:
    assert only_message(AgentParams, num_episodes=value) == (
        f"num_episodes = {value!r} is not valid: use a whole number from 1 to 100000")


@pytest.mark.parametrize(("name", "low", "high"), [("car_speed", 1, 60), ("environment_world", 1, 3)])
def test_environment_ranges(name: str, low: int, high: int) -> None:
    assert getattr(EnvParams(**{name: low}), name) == low
    assert getattr(EnvParams(**{name: high}), name) == high
    assert getattr(EnvParams(**{name: float(high)}), name) == high
    for bad in (low - 1, high + 1, True, 1.5, "x"):
        assert only_message(EnvParams, **{name: bad}) == (
            f"{name} = {bad!r} is not valid: use a whole number from {low} to {high}")


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        ("mode", "racing", "use 'training' or 'evaluation'"),
        ("loss_fn", "l1", "use 'mse', 'rmse', 'mae' or 'huber'"),
        ("optimizer", "sgd", "use 'adam', 'rmsprop' or 'adagrad'"),
        ("optimizer", None, "use 'adam', 'rmsprop' or 'adagrad'"),
        ("learning_algorithm", "ppo", "use 'dqn'"),
        ("enable_wandb", 2, "use true or false (or 1 or 0)"),
        ("enable_wandb", "maybe", "use true or false (or 1 or 0)"),
        ("environment_name", "", "use the name of an environment, such as 'car-race'"),
    ],
)
def test_choices_refused(field: str, value: Any, accepted: str) -> None:
    model = next(m for m in (EnvParams, AgentParams, TrainingParams) if field in m.model_fields)
    assert only_message(model, **{field: value}) == f"{field} = {value!r} is not valid: {accepted}"


@pytest.mark.parametrize(
    ("value", "stored"), [(0, False), (1, True), (True, True), ("false", False), ("1", True)]
)
def test_enable_wandb(value: Any, stored: bool) -> None:
    assert TrainingParams(enable_wandb=value).enable_wandb is stored


# -- reward_function ----------------------------------------------------------------------------------------


def test_a_good_reward_function_is_accepted() -> None:
    source = ("def reward_function(params):\n"
              "    if params['is_offtrack']:\n"
              "        return -1\n"
              "    return 1.0 - params['distance_from_center'] / params['track_width']\n")
    assert TrainingParams(reward_function=source).reward_function == source
    assert check_reward_function(source) == source


@pytest.mark.parametrize(
    ("source", "line", "problem"),
    [
        ("def reward_function(params):\n    return params['speeed']\n", 2, "did you mean 'speed'?"),
        ("def reward_function(params):\n    x = 1\n    return x +\n", 3, "syntax error"),
        ("def reward_function(params):\n    return 'fast'\n", 2, "it must return a number"),
        # Fails only for a car that has left the track: the second sample catches it (falls off line 2).
        ("def reward_function(params):\n    if params['is_alive']:\n        return 1\n", 2, "returned None"),
        ("def reward_function(params):\n    if not params['is_alive']:\n        return 1 / 0\n    return 1\n",
         3, "ZeroDivisionError"),
        ("def reward_function(params):\n    return float('nan')\n", 2, "NaN"),
    ],
)
def test_reward_function_errors_carry_the_line(source: str, line: int, problem: str) -> None:
    with pytest.raises(ParameterError) as caught:
        check_reward_function(source)
    error = caught.value
    assert error.parameter == "reward_function" and error.value == source
    assert error.line == line
    assert isinstance(error.__cause__, RewardFunctionError) and error.__cause__.line == line
    assert problem in str(error) and f"(line {line}" in str(error)
    errors = refused(TrainingParams, reward_function=source)
    assert errors == [{"parameter": "reward_function", "message": str(error)}]


@pytest.mark.parametrize(("source", "problem"), [
    ("", "the source is empty"),
    ("def reward(params):\n    return 1\n", "does not define `reward_function`"),
    ("def reward_function():\n    return 1\n", "exactly one argument"),
    (42, "the source must be text"),
])
def test_reward_function_structure_errors(source: Any, problem: str) -> None:
    message = only_message(TrainingParams, reward_function=source)
    assert message.startswith("reward_function is not valid: ") and problem in message


def test_a_reward_function_message_gives_the_problem_and_line_not_the_source() -> None:
    source = "def reward_function(params):\n" + "    x = 1\n" * 50 + "    return params['nope']\n"
    message = only_message(TrainingParams, reward_function=source)
    assert "(line 52: return params['nope'])" in message
    assert "x = 1" not in message


# -- pydantic errors in our words ---------------------------------------------------------------------------


def test_every_problem_is_reported_with_our_messages() -> None:
    errors = refused(AgentParams, learning_rate=60, gamma=-1, num_episodes=0)
    assert [e["parameter"] for e in errors] == ["learning_rate", "gamma", "num_episodes"]
    assert all("Input should be" not in e["message"] for e in errors)
    with pytest.raises(pydantic.ValidationError) as caught:
        AgentParams(learning_rate=60, gamma=-1)
    assert first_error_message(caught.value) == errors[0]["message"]


def test_missing_and_wrongly_typed_fields_in_a_request_body() -> None:
    class Request(EnvParams):
        session_id: str
        count: int = 0

    assert refused(Request) == [{"parameter": "session_id", "message": "session_id is required"}]
    assert refused(Request, session_id=5, count="x") == [
        {"parameter": "session_id", "message": "session_id = 5 is not valid: use text (a string)"},
        {"parameter": "count", "message": "count = 'x' is not valid: use a whole number"},
    ]
    with pytest.raises(pydantic.ValidationError) as caught:
        Request.model_validate([1, 2])
    assert validation_errors(caught.value) == [
        {"parameter": "body", "message": "the request body must be a JSON object of parameters, not [1, 2]"}]
    assert Request(session_id="s", extra_field=1).session_id == "s"  # unknown fields are ignored


def test_hidden_layer_sizes_make_a_configuration_and_back() -> None:
    from rewards_api.params import configuration_from_hidden, hidden_sizes, parse_model_configuration

    assert configuration_from_hidden([9]) == "[[5, 9], [9, 3]]"
    assert configuration_from_hidden([]) == "[[5, 3]]"
    for hidden in ([9], [16, 16], [32, 8, 4], []):
        assert hidden_sizes(parse_model_configuration(configuration_from_hidden(hidden))) == hidden
    with pytest.raises(pydantic.ValidationError, match="from 1 to 1024"):
        AgentParams(model_configuration=configuration_from_hidden([5000]))
