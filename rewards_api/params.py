"""A session's parameters (SPEC.md §3): pydantic models that check them, with errors a learner can act on.

The models are also the HTTP request bodies, so their field names are the original API's. Values are stored
as sent (``gamma: 90`` stays ``90``, a ``model_configuration`` string stays a string; one JSON-encoded twice,
as the original UI sends its default, is stored encoded once); :meth:`AgentParams.config` gives the
normalised view the learning engine uses.

Every refused value raises :class:`ParameterError` (a ``ValueError``) naming the parameter, the value and what
is accepted. Inside a model it surfaces as a ``pydantic.ValidationError``; :func:`validation_errors` turns
that back into ``[{"parameter", "message"}]`` with the same messages.
"""

from __future__ import annotations

import itertools
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, field_validator

from .envs.default_reward import DEFAULT_REWARD_SOURCE

__all__ = [
    "DEFAULT_AGENT_PARAMS",
    "DEFAULT_ENV_PARAMS",
    "DEFAULT_MODEL_CONFIGURATION",
    "DEFAULT_TRAINING_PARAMS",
    "LOSS_FUNCTIONS",
    "MAX_LAYERS",
    "MAX_LAYER_SIZE",
    "MAX_PARAMETERS",
    "NUM_ACTIONS",
    "NUM_RADARS",
    "OPTIMIZERS",
    "REWARD_CHECKED",
    "AgentConfig",
    "AgentParams",
    "EnvParams",
    "ParameterError",
    "TrainingParams",
    "as_fraction",
    "check_reward_function",
    "configuration_from_hidden",
    "describe_errors",
    "first_error_message",
    "hidden_sizes",
    "parse_model_configuration",
    "stored_model_configuration",
    "validation_errors",
]

NUM_RADARS = 5
"""Inputs of the Q-network: the car's radar distances."""
NUM_ACTIONS = 3
"""Outputs of the Q-network: turn left, turn right, straight on."""
MAX_LAYERS = 16
MAX_LAYER_SIZE = 1024
MAX_PARAMETERS = 2_000_000
"""Weights and biases a Q-network may have (8 MB of float32): the server holds a running job's newest
copy, and every step of training and of the live view pays for each of them."""
MAX_EPISODES = 100_000
MAX_LEARNING_RATE = 1.5
MAX_CAR_SPEED = 60
NUM_WORLDS = 3

LOSS_FUNCTIONS: tuple[str, ...] = ("mse", "rmse", "mae", "huber")
OPTIMIZERS: tuple[str, ...] = ("adam", "rmsprop", "adagrad")
MODES: tuple[str, ...] = ("training", "evaluation")
LEARNING_ALGORITHMS: tuple[str, ...] = ("dqn",)
DEFAULT_MODEL_CONFIGURATION = "[[5, 9], [9, 3]]"

_FRACTION = "use a fraction from 0 to 1 or a percentage from 1 to 100"
_LAYERS_JSON = "write it as JSON: a list of [inputs, outputs] pairs such as [[5, 9], [9, 3]]"
MAX_LAYERS_DECODES = 2
"""JSON decodings of a ``model_configuration`` text: the original UI stringifies its default, which is
already a JSON string (``JSON.stringify("[[5, 9], [9, 3]]")``), so its layers arrive encoded twice."""
_MAX_SHOWN = 80


class ParameterError(ValueError):
    """A parameter value that is refused: names the parameter, the value and what is accepted.

    ``line`` is the line of the user's reward function when the error is in it (else ``None``).
    """

    def __init__(self, parameter: str, value: Any, accepted: str, line: int | None = None) -> None:
        self.parameter = parameter
        self.value = value
        self.accepted = accepted
        self.line = line
        # A reward function's source is no help in a one-line message: its problem and line are.
        shown = "" if parameter == "reward_function" else f" = {_shown(value)}"
        super().__init__(f"{parameter}{shown} is not valid: {accepted}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.parameter, self.value, self.accepted, self.line))


def _shown(value: Any) -> str:
    """``repr(value)``, cut short so that a long reward function does not flood a message."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _number(name: str, value: Any, accepted: str) -> int | float:
    """``value`` as an int or float (numeric text too, as forms send it); bools and NaN are refused."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            raise ParameterError(name, value, accepted) from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(name, value, accepted)
    if isinstance(value, int):
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        raise ParameterError(name, value, accepted)
    return number


def _integer(name: str, value: Any, low: int, high: int) -> int:
    """A whole number in ``[low, high]``; ``3.0`` is accepted as 3, ``2.5`` and ``True`` are not."""
    accepted = f"use a whole number from {low} to {high}"
    number = _number(name, value, accepted)
    if isinstance(number, float):
        if not number.is_integer():
            raise ParameterError(name, value, accepted)
        number = int(number)
    if not low <= number <= high:
        raise ParameterError(name, value, accepted)
    return number


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices``, matched without regard to case or surrounding spaces."""
    accepted = "use " + (
        repr(choices[0]) if len(choices) == 1 else ", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}"
    )
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ParameterError(name, value, accepted)
    return value.strip().lower()


def configuration_from_hidden(hidden: list[int]) -> str:
    """The ``model_configuration`` of a network with these hidden layer sizes: ``[9]`` is
    ``"[[5, 9], [9, 3]]"`` (the radars in, the actions out); ``[]`` is one layer, radars to actions."""
    sizes = [NUM_RADARS, *hidden, NUM_ACTIONS]
    return json.dumps([list(pair) for pair in itertools.pairwise(sizes)])


def hidden_sizes(layers: list[tuple[int, int]] | list[list[int]]) -> list[int]:
    """The hidden layer sizes of ``[(in, out), ...]`` layers: the inverse of
    :func:`configuration_from_hidden`."""
    return [int(out) for _, out in layers[:-1]]


def _decoded_layers(value: Any) -> Any:
    """``value`` with its JSON text decoded (``json.loads``, never evaluated), at most twice: a text that
    is a JSON string holding the layers' JSON is the original UI's default. Anything else as it is."""
    name = "model_configuration"
    layers = value
    for _ in range(MAX_LAYERS_DECODES):
        if not isinstance(layers, str):
            return layers
        try:
            layers = json.loads(layers)
        except ValueError:  # json.JSONDecodeError
            raise ParameterError(name, value, f"it is not valid JSON; {_LAYERS_JSON}") from None
        except RecursionError:
            raise ParameterError(name, value, f"it is nested too deeply; {_LAYERS_JSON}") from None
    if isinstance(layers, str):
        raise ParameterError(
            name, value, f"it is JSON-encoded three times or more; {_LAYERS_JSON}, encoded once"
        )
    return layers


def stored_model_configuration(value: Any) -> str | list[list[int]]:
    """A checked ``model_configuration`` as agent_params.json keeps it: a text as sent, but one encoded
    twice as the layers' JSON text (encoded once) that every reader of the file expects; a list as lists.
    ParameterError for one that :func:`parse_model_configuration` refuses."""
    parse_model_configuration(value)
    if not isinstance(value, str):
        return [list(layer) for layer in value]
    inner = json.loads(value)
    return inner if isinstance(inner, str) else value


def parse_model_configuration(value: Any) -> list[tuple[int, int]]:
    """The Q-network's layers as ``[(in, out), ...]`` from a JSON string or a list of pairs.

    The text is parsed with ``json.loads``, never evaluated; a JSON string of that text (JSON-encoded
    twice) is accepted too, a third level is not. The first layer takes the 5 radars, the last gives the
    3 actions, and each layer takes what the previous one gives.
    """
    name = "model_configuration"
    layers = _decoded_layers(value)
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ParameterError(name, value, _LAYERS_JSON)
    if len(layers) > MAX_LAYERS:
        raise ParameterError(name, value, f"use at most {MAX_LAYERS} layers, not {len(layers)}")
    pairs: list[tuple[int, int]] = []
    for number, layer in enumerate(layers, start=1):
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise ParameterError(
                name, value, f"layer {number} must be an [inputs, outputs] pair, not {_shown(layer)}"
            )
        for size in layer:
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_LAYER_SIZE:
                raise ParameterError(
                    name, value,
                    f"layer {number} has size {_shown(size)}: sizes must be whole numbers from 1 to "
                    f"{MAX_LAYER_SIZE}",
                )
        pairs.append((int(layer[0]), int(layer[1])))
    if pairs[0][0] != NUM_RADARS:
        raise ParameterError(
            name, value, f"the first layer must take {NUM_RADARS} inputs (the radars), not {pairs[0][0]}"
        )
    for number in range(1, len(pairs)):
        given, taken = pairs[number - 1][1], pairs[number][0]
        if given != taken:
            raise ParameterError(
                name, value, f"layer {number + 1} takes {taken} inputs but layer {number} gives {given}"
            )
    if pairs[-1][1] != NUM_ACTIONS:
        raise ParameterError(
            name, value, f"the last layer must give {NUM_ACTIONS} outputs (the actions), not {pairs[-1][1]}"
        )
    parameters = sum((fan_in + 1) * fan_out for fan_in, fan_out in pairs)
    if parameters > MAX_PARAMETERS:
        raise ParameterError(
            name, value, f"the network has {parameters:,} weights and biases; the limit is {MAX_PARAMETERS:,}"
            " (MAX_PARAMETERS): use fewer or smaller layers (two hidden layers of 1024 fit)",
        )
    return pairs


def as_fraction(name: str, value: Any) -> float:
    """A rate given as a fraction in [0, 1] or a percentage in (1, 100], as a fraction.

    ``0.9`` and ``90`` both give ``0.9``; ``1`` is the fraction 1 (100 %).
    """
    number = _number(name, value, _FRACTION)
    if 0 <= number <= 1:
        return float(number)
    if 1 < number <= 100:
        return float(number) / 100
    raise ParameterError(name, value, _FRACTION)


def _learning_rate(value: Any) -> float:
    accepted = f"use a number greater than 0 and at most {MAX_LEARNING_RATE}"
    number = _number("learning_rate", value, accepted)
    if not 0 < number <= MAX_LEARNING_RATE:
        raise ParameterError("learning_rate", value, accepted)
    return float(number)


def check_reward_function(source: Any) -> str:
    """Compile reward source in the sandbox and call it on sample cars of every built-in track; return it.

    The samples (:func:`rewards_api.envs.samples.check_samples`) are real poses: on the centre line, either
    side of it, near the edge and off the track. A problem (syntax, code the sandbox refuses, an
    exception, a non-number, a call that runs too long or is so slow that an episode would pass its CPU
    budget) raises :class:`ParameterError` for ``reward_function`` with the user's line (when there is
    one) in the message and in ``.line``; the ``RewardFunctionError`` is its ``__cause__``.

    Note: this runs the user's code in the calling process, sandboxed, with the process's limits (see
    :func:`rewards_api.runs.reward_limits.call_limits`); the server does it in a child process with memory
    and CPU limits (:mod:`rewards_api.server.reward_check`).
    """
    from .envs.reward import RewardFunctionError, compile_reward_source
    from .envs.samples import call_on_samples
    from .runs.reward_limits import EPISODE_CPU_LIMIT, call_limits

    try:
        with call_limits():
            call_on_samples(compile_reward_source(source), EPISODE_CPU_LIMIT)
    except RewardFunctionError as exc:
        raise ParameterError("reward_function", source, exc.detail, line=exc.line) from exc
    return source


def _bool(name: str, value: Any) -> bool:
    """``True``/``False``, ``1``/``0`` or their text ("true", "false", "1", "0", "yes", "no")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
    raise ParameterError(name, value, "use true or false (or 1 or 0)")


_MODEL_CONFIG = ConfigDict(frozen=True, extra="ignore")


class EnvParams(BaseModel):
    """env_params.json: the simulator and the track to train on."""

    model_config = _MODEL_CONFIG

    environment_name: str = "car-race"
    environment_world: int = 1
    mode: Literal["training", "evaluation"] = "training"
    car_speed: int = 20

    @field_validator("environment_name", mode="before")
    @classmethod
    def _check_name(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise ParameterError(
                "environment_name", value, "use the name of an environment, such as 'car-race'"
            )
        return value.strip()

    @field_validator("environment_world", mode="before")
    @classmethod
    def _check_world(cls, value: Any) -> int:
        return _integer("environment_world", value, 1, NUM_WORLDS)

    @field_validator("mode", mode="before")
    @classmethod
    def _check_mode(cls, value: Any) -> str:
        return _choice("mode", value, MODES)

    @field_validator("car_speed", mode="before")
    @classmethod
    def _check_speed(cls, value: Any) -> int:
        return _integer("car_speed", value, 1, MAX_CAR_SPEED)


@dataclass(frozen=True)
class AgentConfig:
    """The agent's parameters normalised for the learning engine (gamma and epsilon as fractions)."""

    layers: list[tuple[int, int]]
    learning_rate: float
    loss_fn: str
    optimizer: str
    gamma: float
    epsilon: float
    num_episodes: int


class AgentParams(BaseModel):
    """agent_params.json: the Q-network and its training hyper-parameters, stored as sent."""

    model_config = _MODEL_CONFIG

    model_configuration: str | list[list[int]] = DEFAULT_MODEL_CONFIGURATION
    learning_rate: float = 0.01
    loss_fn: Literal["mse", "rmse", "mae", "huber"] = "mse"
    optimizer: Literal["adam", "rmsprop", "adagrad"] = "adam"
    gamma: int | float = 0.9
    epsilon: int | float = 20
    num_episodes: int = 700

    @field_validator("model_configuration", mode="before")
    @classmethod
    def _check_layers(cls, value: Any) -> Any:
        return stored_model_configuration(value)

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _check_learning_rate(cls, value: Any) -> float:
        return _learning_rate(value)

    @field_validator("loss_fn", mode="before")
    @classmethod
    def _check_loss(cls, value: Any) -> str:
        return _choice("loss_fn", value, LOSS_FUNCTIONS)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _check_optimizer(cls, value: Any) -> str:
        return _choice("optimizer", value, OPTIMIZERS)

    @field_validator("gamma", "epsilon", mode="before")
    @classmethod
    def _check_rate(cls, value: Any, info: pydantic.ValidationInfo) -> int | float:
        name = info.field_name or "rate"
        as_fraction(name, value)
        return _number(name, value, _FRACTION)

    @field_validator("num_episodes", mode="before")
    @classmethod
    def _check_episodes(cls, value: Any) -> int:
        return _integer("num_episodes", value, 1, MAX_EPISODES)

    def config(self) -> AgentConfig:
        """The normalised view for the learning engine: parsed layers, gamma and epsilon as fractions."""
        return AgentConfig(
            layers=parse_model_configuration(self.model_configuration),
            learning_rate=float(self.learning_rate),
            loss_fn=self.loss_fn,
            optimizer=self.optimizer,
            gamma=as_fraction("gamma", self.gamma),
            epsilon=as_fraction("epsilon", self.epsilon),
            num_episodes=self.num_episodes,
        )


class TrainingParams(BaseModel):
    """training_params.json: the learning algorithm, experiment tracking and the reward function."""

    model_config = _MODEL_CONFIG

    learning_algorithm: Literal["dqn"] = "dqn"
    enable_wandb: bool = False
    reward_function: str = DEFAULT_REWARD_SOURCE

    @field_validator("learning_algorithm", mode="before")
    @classmethod
    def _check_algorithm(cls, value: Any) -> str:
        return _choice("learning_algorithm", value, LEARNING_ALGORITHMS)

    @field_validator("enable_wandb", mode="before")
    @classmethod
    def _check_wandb(cls, value: Any) -> bool:
        return _bool("enable_wandb", value)

    @field_validator("reward_function", mode="before")
    @classmethod
    def _check_reward(cls, value: Any, info: pydantic.ValidationInfo) -> str:
        # The server checks reward code in another process and says so with this context: user code
        # must never run inside it (``TrainingParams.model_validate(data, context=REWARD_CHECKED)``).
        if info.context and info.context.get("reward_checked"):
            if not isinstance(value, str):
                raise ParameterError("reward_function", value, "send the Python source as text")
            return value
        return check_reward_function(value)


REWARD_CHECKED = {"reward_checked": True}
"""Validation context for a reward function already checked elsewhere (in a sandbox process)."""

DEFAULT_ENV_PARAMS = EnvParams()
"""The original UI's environment defaults (a frozen model; ``.model_dump()`` gives the JSON dict)."""
DEFAULT_AGENT_PARAMS = AgentParams()
"""The original UI's agent defaults (a frozen model; ``.model_dump()`` gives the JSON dict)."""
DEFAULT_TRAINING_PARAMS = TrainingParams()
"""The original UI's training defaults (a frozen model; ``.model_dump()`` gives the JSON dict)."""

_EXPECTED_TYPES = {
    "str": "use text (a string)",
    "int": "use a whole number",
    "float": "use a number",
    "bool": "use true or false (or 1 or 0)",
    "list": "use a list",
    "dict": "use a JSON object",
    "model": "send a JSON object with the parameters",
}


def _generic_message(parameter: str, error: Any) -> str:
    """A message for an error pydantic raised itself (not one of ours): missing, wrong type, choice."""
    kind = error.get("type", "")
    if not any(isinstance(part, str) for part in error.get("loc", ())):
        return f"the request body must be a JSON object of parameters, not {_shown(error.get('input'))}"
    if kind == "missing":
        return f"{parameter} is required"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        accepted = f"use {expected}"
    else:
        accepted = next(
            (text for prefix, text in _EXPECTED_TYPES.items() if kind.startswith(prefix)),
            error.get("msg", "see the documentation"),
        )
    return f"{parameter} = {_shown(error.get('input'))} is not valid: {accepted}"


def validation_errors(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    """``[{"parameter", "message"}]`` for each problem, with our messages instead of pydantic's."""
    return describe_errors(exc.errors())


_REQUEST_PARTS = ("body", "query", "path", "header", "cookie")


def describe_errors(errors: Any) -> list[dict[str, str]]:
    """:func:`validation_errors` for a list of pydantic error dicts (as FastAPI reports them)."""
    found: list[dict[str, str]] = []
    for error in errors:
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ParameterError):
            found.append({"parameter": cause.parameter, "message": str(cause)})
            continue
        names = [str(part) for part in error.get("loc", ()) if isinstance(part, str)]
        if len(names) > 1 and names[0] in _REQUEST_PARTS:  # FastAPI says where: ("query", "session_id")
            names = names[1:]
        parameter = names[0] if names else "body"
        found.append({"parameter": parameter, "message": _generic_message(parameter, error)})
    return found


def first_error_message(exc: pydantic.ValidationError) -> str:
    """The first problem's message, for places that show one line (the CLI, a 422 ``detail``)."""
    found = validation_errors(exc)
    return found[0]["message"] if found else str(exc)
