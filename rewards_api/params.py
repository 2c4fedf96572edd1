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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from .envs.default_reward import DEFAULT_REWARD_SOURCE
from .envs.physics import (
    ACTION_SPACES,
    DEFAULT_ACTION_SPACE,
    DEFAULT_ACTIONS,
    DEFAULT_SPEED_RANGE,
    MAX_ACTIONS,
    MAX_SPEED,
    MAX_STEERING,
    MIN_SPEED,
    Action,
)

__all__ = [
    "CONTINUOUS_OUTPUTS",
    "DEFAULT_AGENT_PARAMS",
    "DEFAULT_ENV_PARAMS",
    "DEFAULT_MODEL_CONFIGURATION",
    "DEFAULT_TRAINING_PARAMS",
    "LEARNING_ALGORITHMS",
    "LOSS_FUNCTIONS",
    "MAX_LAYERS",
    "MAX_LAYER_SIZE",
    "MAX_PARAMETERS",
    "NUM_ACTIONS",
    "NUM_RADARS",
    "OPTIMIZERS",
    "OPTIONAL_AGENT_KEYS",
    "PPO_DEFAULTS",
    "PPO_KEYS",
    "RACING_HIDDEN_SIZES",
    "RACING_OBSERVATION_SIZE",
    "REWARD_CHECKED",
    "AgentConfig",
    "AgentParams",
    "CarShape",
    "EnvParams",
    "PPOParams",
    "ParameterError",
    "TrainingParams",
    "action_count",
    "as_fraction",
    "check_action_space",
    "check_reward_function",
    "check_trainable",
    "check_world",
    "configuration_from_hidden",
    "default_model_configuration",
    "describe_errors",
    "first_error_message",
    "hidden_sizes",
    "is_default_network",
    "mismatch_advice",
    "observation_size",
    "parse_actions",
    "parse_any_model_configuration",
    "parse_model_configuration",
    "parse_speed_range",
    "session_agent_params",
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
LEARNING_ALGORITHMS: tuple[str, ...] = ("dqn", "ppo")
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


def configuration_from_hidden(hidden: Sequence[int], inputs: int = NUM_RADARS,
                              outputs: int = NUM_ACTIONS) -> str:
    """The ``model_configuration`` of a network with these hidden layer sizes: ``[9]`` is
    ``"[[5, 9], [9, 3]]"`` (the radars in, the actions out); ``[]`` is one layer, radars to actions. A
    racing car's network takes ``inputs=observation_size(space)`` and gives ``outputs=action_count(...)``."""
    sizes = [inputs, *hidden, outputs]
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


def stored_model_configuration(value: Any, car: CarShape | None = None, *, any_car: bool = True
                               ) -> str | list[list[int]]:
    """A checked ``model_configuration`` as agent_params.json keeps it: a text as sent, but one encoded
    twice as the layers' JSON text (encoded once) that every reader of the file expects; a list as lists.
    ParameterError for one that :func:`parse_model_configuration` refuses for ``car``; without a car, for
    any car (:func:`parse_any_model_configuration`), or (``any_car=False``) for its form only, leaving its
    first ``in`` and last ``out`` to a check against the session's car."""
    if car is not None:
        car.parse(value)
    elif any_car:
        parse_any_model_configuration(value)
    else:
        parse_model_configuration(value, None, None)
    if not isinstance(value, str):
        return [list(layer) for layer in value]
    inner = json.loads(value)
    return inner if isinstance(inner, str) else value


def _layer_pairs(value: Any) -> list[tuple[int, int]]:
    """The layers of a ``model_configuration`` whose form is right (a list of at most MAX_LAYERS
    [inputs, outputs] pairs of sizes 1-MAX_LAYER_SIZE); what goes in and out is not checked here."""
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
    return pairs


def _inputs_named(inputs: int, car: str | None) -> str:
    """What the network's inputs are: "the radars" (classic), "5 radars and the speed" (the racing cars)."""
    what = "the radars" if inputs == NUM_RADARS else f"{NUM_RADARS} radars and the speed"
    return what if car is None else f"{what}, for the {car} car"


def _outputs_named(outputs: int, car: str | None) -> str:
    if car is None or car == "classic":
        return "the actions" if car is None else "the actions, for the classic car"
    if car == "continuous":
        return "the steering angle and the speed, for the continuous car"
    return f"one for each of the {car} car's {outputs} actions"


def parse_model_configuration(value: Any, inputs: int | None = NUM_RADARS, outputs: int | None = NUM_ACTIONS,
                              car: str | None = None) -> list[tuple[int, int]]:
    """The Q-network's layers as ``[(in, out), ...]`` from a JSON string or a list of pairs.

    The text is parsed with ``json.loads``, never evaluated; a JSON string of that text (JSON-encoded
    twice) is accepted too, a third level is not. The first layer takes ``inputs`` (the observation: the
    classic car's 5 radars by default), the last gives ``outputs`` (one per action: the classic car's 3 by
    default), and each layer takes what the previous one gives. ``car`` (an action space) names the car
    in the messages; :class:`CarShape` gives all three for a session's car. ``None`` for ``inputs`` or
    ``outputs`` leaves them unchecked (a request whose session's car is checked later, in the store).
    """
    name = "model_configuration"
    pairs = _layer_pairs(value)
    if inputs is not None and pairs[0][0] != inputs:
        raise ParameterError(
            name, value, f"the first layer must take {inputs} inputs ({_inputs_named(inputs, car)}), "
            f"not {pairs[0][0]}"
        )
    for number in range(1, len(pairs)):
        given, taken = pairs[number - 1][1], pairs[number][0]
        if given != taken:
            raise ParameterError(
                name, value, f"layer {number + 1} takes {taken} inputs but layer {number} gives {given}"
            )
    if outputs is not None and pairs[-1][1] != outputs:
        raise ParameterError(
            name, value, f"the last layer must give {outputs} outputs ({_outputs_named(outputs, car)}), "
            f"not {pairs[-1][1]}"
        )
    parameters = sum((fan_in + 1) * fan_out for fan_in, fan_out in pairs)
    if parameters > MAX_PARAMETERS:
        raise ParameterError(
            name, value, f"the network has {parameters:,} weights and biases; the limit is {MAX_PARAMETERS:,}"
            " (MAX_PARAMETERS): use fewer or smaller layers (two hidden layers of 1024 fit)",
        )
    return pairs


def parse_any_model_configuration(value: Any) -> list[tuple[int, int]]:
    """:func:`parse_model_configuration` for a network that fits some car, when the car is not known (a
    file read on its own, a form's check): one taking the racing observation (6 inputs) may give from 2 to
    MAX_ACTIONS outputs; any other is checked as the classic car's (5 inputs, 3 outputs, today's messages).
    Where the session is known, check its car's network with :class:`CarShape`."""
    pairs = _layer_pairs(value)
    racing = RACING_OBSERVATION_SIZE
    if pairs[0][0] == racing and 2 <= pairs[-1][1] <= MAX_ACTIONS:
        return parse_model_configuration(value, racing, pairs[-1][1])
    return parse_model_configuration(value)


def is_default_network(value: Any) -> bool:
    """Whether ``value`` is the default network of some car (``[[5, 9], [9, 3]]``, or RACING_HIDDEN_SIZES
    between the racing observation and any number of outputs): one the user kept, not chose."""
    try:
        layers = parse_any_model_configuration(value)
    except ValueError:
        return False
    if layers[0][0] == NUM_RADARS:
        return layers == parse_model_configuration(DEFAULT_MODEL_CONFIGURATION)
    return hidden_sizes(layers) == list(RACING_HIDDEN_SIZES)


# ----- the car: action spaces, actions, speed range -----------------------------------------------------
RACING_OBSERVATION_SIZE = NUM_RADARS + 1
"""The racing cars' observation: the 5 radars and the speed (m/s)."""
CONTINUOUS_OUTPUTS = 2
"""The continuous car's outputs: the steering angle and the speed."""
RACING_HIDDEN_SIZES: tuple[int, ...] = (64, 64)
"""The hidden layers of the racing cars' default network (the classic car's is one layer of 9)."""
RACING_ACTION_SPACES: tuple[str, ...] = ("discrete", "continuous")
_ACTIONS_TEXT = "write them as angle:speed pairs such as '-30:1.5, 0:4, 30:1.5', or as a JSON list of " \
    "{\"steering_angle\", \"speed\"} objects"
_ANGLE_RULE = f"use an angle from {-MAX_STEERING:g} to {MAX_STEERING:g} degrees (+ is left)"
_SPEED_RULE = f"use a speed from {MIN_SPEED:g} to {MAX_SPEED:g} m/s"
_SPEED_RANGE_RULE = (f"use [min, max] speeds in m/s with {MIN_SPEED:g} <= min < max <= {MAX_SPEED:g}, "
                     f"such as '{DEFAULT_SPEED_RANGE[0]:g}:{DEFAULT_SPEED_RANGE[1]:g}' or "
                     f"[{DEFAULT_SPEED_RANGE[0]:g}, {DEFAULT_SPEED_RANGE[1]:g}]")


def check_world(value: Any) -> int | str:
    """A session's training track: a number 1..NUM_WORLDS (the original's; numeric text too), or the name of
    a named training track (``serpent``, ``drag-strip``, ...). Evaluation tracks are refused: they are held
    out from training."""
    if not (isinstance(value, str) and value.strip() and not value.strip().lstrip("+-").isdigit()):
        try:
            return _integer("environment_world", value, 1, NUM_WORLDS)
        except ParameterError:
            numeric_text = isinstance(value, str) and value.strip().lstrip("+-").isdigit()
            shown = int(value) if numeric_text else value  # "7" from a form or the CLI reads as 7
            raise ParameterError("environment_world", shown, _world_accepted()) from None
    from .envs.tracks import EVALUATION_NAMED_TRACKS  # NumPy: only for a name

    name = value.strip().lower()
    if name in _training_track_names():
        return name
    held_out = ""
    if name in EVALUATION_NAMED_TRACKS:
        held_out = f"{name!r} is an evaluation track, held out from training; "
    raise ParameterError("environment_world", value, held_out + _world_accepted())


def _training_track_names() -> list[str]:
    from .envs.tracks import ALL_NAMED_TRACKS, EVALUATION_NAMED_TRACKS

    return [track for track in ALL_NAMED_TRACKS if track not in EVALUATION_NAMED_TRACKS]


def _world_accepted() -> str:
    return (f"use a track number from 1 to {NUM_WORLDS} or a named training track: "
            f"{', '.join(_training_track_names())}")


def check_action_space(value: Any) -> str:
    """One of ACTION_SPACES (case and spaces aside); ``None`` is the default, ``classic``."""
    return DEFAULT_ACTION_SPACE if value is None else _choice("action_space", value, ACTION_SPACES)


def _text_or_json(name: str, value: Any, how: str) -> Any:
    """A JSON text (``[`` first) decoded; other text as it is. ParameterError for JSON that does not parse."""
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            raise ParameterError(name, value, f"it is not valid JSON; {how}") from None
        except RecursionError:
            raise ParameterError(name, value, f"it is nested too deeply; {how}") from None
    return value


def _finite(name: str, value: Any, accepted: str, low: float, high: float) -> float:
    """A number (or numeric text) in ``[low, high]``, as a float; the message shows a text's number."""
    number = _number(name, value, accepted)
    if not low <= number <= high:
        raise ParameterError(name, number, accepted)
    return float(number) + 0.0  # -0.0 is 0.0


def _one_action(index: int, item: Any) -> dict[str, float]:
    name = f"actions[{index}]"
    if isinstance(item, Action):
        item = item.as_dict()
    elif isinstance(item, str) and item.count(":") == 1:
        item = dict(zip(("steering_angle", "speed"), item.split(":"), strict=True))
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        item = {"steering_angle": item[0], "speed": item[1]}
    if not isinstance(item, dict) or set(item) != {"steering_angle", "speed"}:
        raise ParameterError(name, item, "write each action as angle:speed (such as 0:4), [angle, speed] or "
                             "{\"steering_angle\": 0, \"speed\": 4}")
    return {"steering_angle": _finite(f"{name}.steering_angle", item["steering_angle"], _ANGLE_RULE,
                                      -MAX_STEERING, MAX_STEERING),
            "speed": _finite(f"{name}.speed", item["speed"], _SPEED_RULE, MIN_SPEED, MAX_SPEED)}


def parse_actions(value: Any) -> list[dict[str, float]]:
    """The discrete car's actions as ``[{"steering_angle": deg, "speed": m/s}, ...]``, from a list (of
    such objects, of ``[angle, speed]`` pairs or of :class:`~rewards_api.envs.physics.Action`), from its
    JSON text, or from the compact text of forms and the CLI: ``"-30:1.5, 0:4, 30:1.5"`` (angle:speed
    pairs, separated by commas, semicolons or new lines). From 2 to MAX_ACTIONS different actions, each
    angle within +-MAX_STEERING degrees (+ is left) and each speed from MIN_SPEED to MAX_SPEED m/s.
    ParameterError naming the action (``actions[3].speed``, counted from 0), the value and the rule."""
    items = _text_or_json("actions", value, _ACTIONS_TEXT)
    if isinstance(items, str):
        items = [part.strip() for part in items.replace(";", ",").replace("\n", ",").split(",")]
        items = [part for part in items if part]
    if not isinstance(items, (list, tuple)):
        raise ParameterError("actions", value, _ACTIONS_TEXT)
    if not 2 <= len(items) <= MAX_ACTIONS:
        raise ParameterError("actions", value, f"give from 2 to {MAX_ACTIONS} actions, not {len(items)}; "
                             f"{_ACTIONS_TEXT}")
    actions: list[dict[str, float]] = []
    for index, item in enumerate(items):
        action = _one_action(index, item)
        if action in actions:
            raise ParameterError(f"actions[{index}]", item, f"it is the same action as "
                                 f"actions[{actions.index(action)}]: each action must differ")
        actions.append(action)
    return actions


def parse_speed_range(value: Any) -> list[float]:
    """The continuous car's commanded-speed range ``[min, max]`` in m/s, from a list of two numbers, its
    JSON text or the text ``"min:max"`` (``"0.5:4"``; a comma works too); MIN_SPEED <= min < max <=
    MAX_SPEED. ParameterError naming ``speed_range``, the value and the rule."""
    pair = _text_or_json("speed_range", value, _SPEED_RANGE_RULE)
    if isinstance(pair, str):
        separator = ":" if ":" in pair else ","
        pair = [part.strip() for part in pair.split(separator)]
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise ParameterError("speed_range", value, _SPEED_RANGE_RULE)
    try:
        low, high = (float(_number("speed_range", part, _SPEED_RANGE_RULE)) for part in pair)
    except ParameterError:
        raise ParameterError("speed_range", value, _SPEED_RANGE_RULE) from None
    if not MIN_SPEED <= low < high <= MAX_SPEED:
        raise ParameterError("speed_range", value, _SPEED_RANGE_RULE)
    return [low + 0.0, high + 0.0]


def observation_size(action_space: str) -> int:
    """The network's inputs for a car: 5 (the radars) for ``classic``, 6 (the radars and the speed) for
    ``discrete`` and ``continuous``."""
    return NUM_RADARS if check_action_space(action_space) == "classic" else RACING_OBSERVATION_SIZE


def action_count(action_space: str, actions: Any = None) -> int:
    """The network's outputs for a car: 3 for ``classic``, the number of ``actions`` for ``discrete``
    (default: DEFAULT_ACTIONS; checked as :func:`parse_actions` checks them), 2 (steering, speed) for
    ``continuous``."""
    space = check_action_space(action_space)
    if space == "classic":
        return NUM_ACTIONS
    if space == "continuous":
        return CONTINUOUS_OUTPUTS
    return len(DEFAULT_ACTIONS) if actions is None else len(parse_actions(actions))


def default_model_configuration(action_space: str, actions: Any = None) -> str:
    """A new session's network for a car: the original's ``[[5, 9], [9, 3]]`` for ``classic``; for the
    racing cars RACING_HIDDEN_SIZES between their observation and their actions (``[[6, 64], [64, 64],
    [64, 15]]`` for the default discrete actions)."""
    return CarShape.of(action_space, actions).default()


@dataclass(frozen=True)
class CarShape:
    """What a session's car asks of its network: ``inputs`` (observation size), ``outputs`` (actions)."""

    action_space: str
    inputs: int
    outputs: int

    @classmethod
    def of(cls, action_space: str, actions: Any = None) -> CarShape:
        space = check_action_space(action_space)
        return cls(space, observation_size(space), action_count(space, actions))

    def parse(self, value: Any) -> list[tuple[int, int]]:
        """:func:`parse_model_configuration` for this car, its messages naming it."""
        return parse_model_configuration(value, self.inputs, self.outputs, car=self.action_space)

    def fits(self, value: Any) -> bool:
        try:
            self.parse(value)
        except ValueError:
            return False
        return True

    def default(self) -> str:
        if self.action_space == "classic":
            return DEFAULT_MODEL_CONFIGURATION
        return configuration_from_hidden(RACING_HIDDEN_SIZES, self.inputs, self.outputs)

    def context(self) -> dict[str, Any]:
        """Validation context that checks an :class:`AgentParams`' network against this car:
        ``AgentParams.model_validate(data, context=shape.context())``."""
        return {"car": self}


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


_CAR_KEYS: dict[str, str] = {"actions": "discrete", "speed_range": "continuous"}
"""The car's own keys of env_params.json, and the action space each belongs to."""


class EnvParams(BaseModel):
    """env_params.json: the simulator, the track to train on and the car.

    A ``classic`` session (the default: no ``action_space``, as every session before the racing cars)
    keeps exactly the original four keys; a ``discrete`` one adds ``action_space`` and ``actions``, a
    ``continuous`` one ``action_space`` and ``speed_range``. The key of the other racing car is refused
    (a request that gives actions to the continuous car has a mistake in it), unless it is null.
    """

    model_config = _MODEL_CONFIG

    environment_name: str = "car-race"
    environment_world: int | str = Field(1, description=(
        "The training track: 1, 2 or 3 (the original's), or the name of a named training track such as "
        "'drag-strip' (GET /tracks lists them; the evaluation tracks are held out)."))
    mode: Literal["training", "evaluation"] = "training"
    car_speed: int = 20
    action_space: Literal["classic", "discrete", "continuous"] = Field(
        DEFAULT_ACTION_SPACE, description="The car: 'classic' (the original: 3 actions at one speed), "
        "'discrete' (speed and steering, a list of actions) or 'continuous' (any steering angle and speed).")
    actions: list[dict[str, float]] | str | None = Field(
        None, description="discrete only: the actions, [{\"steering_angle\": degrees from -30 to 30 (+ is "
        "left), \"speed\": m/s from 0.5 to 4}, ...], 2 to 64 different ones, or the text '-30:1.5, 0:4, "
        "30:1.5'. Default: 5 angles x 3 speeds.", examples=[[{"steering_angle": 0, "speed": 4}]])
    speed_range: list[float] | str | None = Field(
        None, description="continuous only: [min, max] commanded speed in m/s, 0.5 <= min < max <= 4, "
        "or the text '0.5:4'. Default: [0.5, 4].")

    @model_validator(mode="before")
    @classmethod
    def _car_keys(cls, data: Any) -> Any:
        """Refuse the keys of another car; give the chosen racing car its defaults."""
        if not isinstance(data, dict):
            return data
        space = check_action_space(data.get("action_space"))
        data = dict(data)
        for key, owner in _CAR_KEYS.items():
            if data.get(key) is None:
                data.pop(key, None)
                continue
            if owner != space:
                raise ParameterError(key, data[key], f"it is for the {owner} car only: leave it out for "
                                     f"the {space} car, or choose action_space {owner!r}")
        if space == "discrete" and "actions" not in data:
            data["actions"] = [action.as_dict() for action in DEFAULT_ACTIONS]
        if space == "continuous" and "speed_range" not in data:
            data["speed_range"] = list(DEFAULT_SPEED_RANGE)
        return data

    @field_validator("action_space", mode="before")
    @classmethod
    def _check_action_space(cls, value: Any) -> str:
        return check_action_space(value)

    @field_validator("actions", mode="before")
    @classmethod
    def _check_actions(cls, value: Any) -> list[dict[str, float]] | None:
        return None if value is None else parse_actions(value)

    @field_validator("speed_range", mode="before")
    @classmethod
    def _check_speed_range(cls, value: Any) -> list[float] | None:
        return None if value is None else parse_speed_range(value)

    @model_serializer(mode="wrap")
    def _without_other_cars_keys(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A classic car's parameters are the original four keys; a racing car's add its own."""
        data = handler(self)
        if isinstance(data, dict):
            if self.action_space == DEFAULT_ACTION_SPACE:
                data.pop("action_space", None)
            for key, owner in _CAR_KEYS.items():
                if owner != self.action_space:
                    data.pop(key, None)
        return data

    def car(self) -> dict[str, Any]:
        """What decides the model's inputs, outputs and their meaning: ``{"action_space"}`` and the racing
        car's ``actions`` or ``speed_range``. A new car needs a new model, as a new network shape does."""
        car: dict[str, Any] = {"action_space": self.action_space}
        for key, owner in _CAR_KEYS.items():
            if owner == self.action_space:
                car[key] = getattr(self, key)
        return car

    def shape(self) -> CarShape:
        """The network this car needs (inputs, outputs): see :class:`CarShape`."""
        return CarShape.of(self.action_space, self.actions)

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
    def _check_world(cls, value: Any) -> int | str:
        return check_world(value)

    @field_validator("mode", mode="before")
    @classmethod
    def _check_mode(cls, value: Any) -> str:
        return _choice("mode", value, MODES)

    @field_validator("car_speed", mode="before")
    @classmethod
    def _check_speed(cls, value: Any) -> int:
        return _integer("car_speed", value, 1, MAX_CAR_SPEED)


def _context_car(info: pydantic.ValidationInfo) -> CarShape | None:
    car = (info.context or {}).get("car") if isinstance(info.context, dict) else None
    return car if isinstance(car, CarShape) else None


@dataclass(frozen=True)
class PPOParams:
    """PPO's hyper-parameters (agent_params.json; DeepRacer's names where it has them): see
    ``rewards_api.agents.ppo``. The discount and the learning rate are the session's ``gamma`` and
    ``learning_rate``, the value loss its ``loss_fn``."""

    batch_size: int = 4096
    num_epochs: int = 4
    beta_entropy: float = 0.01
    rollout_length: int = 32
    clip_range: float = 0.2
    gae_lambda: float = 0.95


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
    normalize_rewards: bool = True
    ppo: PPOParams = field(default_factory=lambda: PPOParams())


PPO_KEYS: tuple[str, ...] = ("batch_size", "num_epochs", "beta_entropy", "rollout_length", "clip_range",
                             "gae_lambda")
"""agent_params.json's PPO keys: written only when sent (a DQN session's file keeps the original keys)."""
OPTIONAL_AGENT_KEYS: tuple[str, ...] = (*PPO_KEYS, "normalize_rewards")
MAX_BATCH_SIZE = 65_536
MAX_EPOCHS = 100
MAX_ROLLOUT_LENGTH = 4096
_WHOLE_NUMBERS: dict[str, tuple[int, int]] = {
    "num_episodes": (1, MAX_EPISODES), "batch_size": (16, MAX_BATCH_SIZE), "num_epochs": (1, MAX_EPOCHS),
    "rollout_length": (4, MAX_ROLLOUT_LENGTH)}
"""agent_params.json's whole numbers and their ranges."""
PPO_DEFAULTS: dict[str, Any] = {"learning_rate": 0.0003, "num_episodes": 30_000}
"""What a new PPO session is given where DQN's defaults do not suit it (the CLI's ``create`` and the lab
fill them in; stored values are never changed): DeepRacer's learning rate (DQN's is the original's 0.01),
and enough episodes for PPO's batches of thousands of steps: on this machine 7-9 s for the classic car,
50-60 s for the racing cars, each then lapping the unseen evaluation track (the original's 700 are over in
a fraction of a second of 256 cars, before the first few updates)."""


def _open_fraction(name: str, value: Any, accepted: str, low_open: bool = True) -> float:
    number = float(_number(name, value, accepted))
    if not math.isfinite(number) or number > 1 or number < 0 or (low_open and number == 0):
        raise ParameterError(name, value, accepted)
    return number


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
    normalize_rewards: bool = Field(True, description=(
        "Divide rewards by a running estimate of the return's standard deviation before learning (both "
        "algorithms), so that the reward function's scale does not matter; scores stay in its units."))
    batch_size: int = Field(PPOParams.batch_size, description="PPO: samples per gradient step (16 to 65536).")
    num_epochs: int = Field(PPOParams.num_epochs, description="PPO: passes over each rollout (1 to 100).")
    beta_entropy: float = Field(PPOParams.beta_entropy, description="PPO: the entropy bonus' weight, 0 to 1.")
    rollout_length: int = Field(PPOParams.rollout_length, description=(
        "PPO: steps each car drives between two updates (4 to 4096); an update learns from all cars' steps."))
    clip_range: float = Field(PPOParams.clip_range, description="PPO: the policy ratio's clip, in (0, 1].")
    gae_lambda: float = Field(PPOParams.gae_lambda, description="PPO: GAE's lambda, from 0 to 1.")

    @model_validator(mode="before")
    @classmethod
    def _car_default(cls, data: Any, info: pydantic.ValidationInfo) -> Any:
        """Checked for a car (``context=CarShape.context()``), the default network is that car's."""
        car = _context_car(info)
        if car is not None and isinstance(data, dict) and data.get("model_configuration") is None:
            data = {**data, "model_configuration": car.default()}
        return data

    @field_validator("model_configuration", mode="before")
    @classmethod
    def _check_layers(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        return stored_model_configuration(value, _context_car(info))

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

    @field_validator(*_WHOLE_NUMBERS, mode="before")
    @classmethod
    def _check_whole_number(cls, value: Any, info: pydantic.ValidationInfo) -> int:
        name = info.field_name or "value"
        return _integer(name, value, *_WHOLE_NUMBERS[name])

    @field_validator("normalize_rewards", mode="before")
    @classmethod
    def _check_normalize(cls, value: Any) -> bool:
        return _bool("normalize_rewards", value)

    @field_validator("beta_entropy", "gae_lambda", mode="before")
    @classmethod
    def _check_closed_fraction(cls, value: Any, info: pydantic.ValidationInfo) -> float:
        name = info.field_name or "value"
        return _open_fraction(name, value, "use a number from 0 to 1", low_open=False)

    @field_validator("clip_range", mode="before")
    @classmethod
    def _check_clip(cls, value: Any) -> float:
        return _open_fraction("clip_range", value, "use a number greater than 0 and at most 1 (PPO's usual "
                              "is 0.2)")

    @model_serializer(mode="wrap")
    def _original_keys_unless_sent(self, handler: pydantic.SerializerFunctionWrapHandler) -> dict[str, Any]:
        """agent_params.json keeps the original keys; PPO's and ``normalize_rewards`` are added once sent."""
        data = handler(self)
        if isinstance(data, dict):
            for key in OPTIONAL_AGENT_KEYS:
                if key not in self.model_fields_set:
                    data.pop(key, None)
        return data

    def config(self) -> AgentConfig:
        """The normalised view for the learning engine: parsed layers, gamma and epsilon as fractions."""
        return AgentConfig(
            layers=parse_any_model_configuration(self.model_configuration),
            learning_rate=float(self.learning_rate),
            loss_fn=self.loss_fn,
            optimizer=self.optimizer,
            gamma=as_fraction("gamma", self.gamma),
            epsilon=as_fraction("epsilon", self.epsilon),
            num_episodes=self.num_episodes,
            normalize_rewards=self.normalize_rewards,
            ppo=PPOParams(**{key: getattr(self, key) for key in PPO_KEYS}),
        )


class TrainingParams(BaseModel):
    """training_params.json: the learning algorithm, experiment tracking and the reward function."""

    model_config = _MODEL_CONFIG

    learning_algorithm: Literal["dqn", "ppo"] = Field("dqn", description=(
        "'dqn' (the original: deep Q-learning, for the classic and discrete cars) or 'ppo' (proximal policy "
        "optimization, for every car, the continuous one included)."))
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


def session_agent_params(env: EnvParams, stored: dict[str, Any]) -> AgentParams:
    """A session's agent_params.json (``stored``, ``{}`` if not written) checked against its car, ``env``'s:
    its default network is that car's. A network that does not fit the car is a ParameterError for
    ``model_configuration`` that names the numbers the car needs and a network that fits; any other
    problem is the ``pydantic.ValidationError`` that :class:`AgentParams` raises."""
    shape = env.shape()
    try:
        return AgentParams.model_validate(stored, context=shape.context())
    except pydantic.ValidationError as exc:
        value = stored.get("model_configuration")
        try:
            layers = parse_any_model_configuration(value)
        except ValueError:
            raise exc from None
        problem = next(error["message"] for error in validation_errors(exc)
                       if error["parameter"] == "model_configuration").split(" is not valid: ", 1)[-1]
        raise ParameterError("model_configuration", value, mismatch_advice(problem, layers, shape)) from None


def mismatch_advice(problem: str, layers: list[tuple[int, int]], shape: CarShape) -> str:
    """``problem`` (a network that is for another car) with what this car's network takes and gives, and
    the same hidden layers made to fit it."""
    fitting = configuration_from_hidden(hidden_sizes(layers), shape.inputs, shape.outputs)
    return (f"{problem}: the session drives the {shape.action_space} car (env_params.json action_space), "
            f"whose network takes {shape.inputs} inputs and gives {shape.outputs} outputs, such as {fitting}")


def check_trainable(env: EnvParams, learning_algorithm: str) -> None:
    """ParameterError for a car the learning algorithm cannot train: DQN picks one of a list of actions,
    so the continuous car needs PPO."""
    if env.action_space == "continuous" and learning_algorithm == "dqn":
        raise ParameterError("learning_algorithm", learning_algorithm, "the continuous car needs PPO (DQN "
                             "picks one of a list of actions): set learning_algorithm to 'ppo' "
                             "(training_params.json), or choose action_space 'discrete' to train with DQN")


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
