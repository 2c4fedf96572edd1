"""User reward functions: loading them from source, calling them for many cars, and clear errors.

A reward function is Python source that defines ``reward_function(params) -> number``. ``params`` is a
plain ``dict`` with these keys (pixels and degrees; ``y`` grows *downwards*, as in the track image; 1 px is
1 cm). Where the two cars differ, *classic* is the original game's car (constant speed, 15-degree turns)
and *racing* the speed-and-steering car of the ``discrete`` and ``continuous`` action spaces:

=========================  ==========================================================================
key                        value
=========================  ==========================================================================
``is_alive``               ``bool``: the car is still on the asphalt after this step (its centre is)
``observation``            ``list`` of 5 ``float``: radar distances (px, 0-200) at -60, -30, 0, 30 and
                           60 degrees from the heading (negative angles are to the car's right)
``radars``                 the same list as ``observation`` (the original API's name)
``direction``              ``int``: which way the car steers, -1 left, 1 right, 0 straight on
``rotational_velocity``    ``float``: degrees the car turns in a step: classic 15 (when it turns);
                           racing, how far it turned in this step
``steering_angle``         ``float``: degrees the front wheels steer, + left: classic +15, -15 or 0;
                           racing, the real angle (the commanded one, or less where the grip ends)
``car_location``           ``tuple`` ``(x, y)``: the car's position in pixels
``x``, ``y``               ``float``: the car's position in pixels from the image's top-left corner
``heading``                ``float``: degrees in (-180, 180], counter-clockwise on screen, 0 = right
``speed``                  ``float``: classic, pixels the car moves in a step (10, that is 1 m/s);
                           racing, the real speed in m/s (0 at the start, up to 4)
``progress``               ``float``: percent of the lap completed, 0-100
``steps``                  ``int``: steps taken in this episode, this one included (a step is 0.1 s)
``distance_from_center``   ``float``: pixels from the centre line of the track
``track_width``            ``float``: width of the asphalt in pixels
``is_left_of_center``      ``bool``: the car is left of the centre line (seen in its direction of travel)
``is_offtrack``            ``bool``: the car has left the asphalt (the opposite of ``is_alive``)
``closest_waypoints``      ``list`` ``[previous, next]``: indices into ``waypoints`` around the car
``waypoints``              ``tuple`` of ``(x, y)``: the centre line, every 5 px, from the start line on
``track_length``           ``float``: length of a lap along the centre line, in pixels
``all_wheels_on_track``    ``bool``: all four wheels are on the asphalt (the car is 16 x 16 px between
                           its wheels), not just its centre
``is_reversed``            ``bool``: the car faces against the track's direction (more than 90 degrees
                           from it): it is driving the wrong way round
``lap_time``               ``float``: seconds of simulated time since the lap (the episode) started:
                           ``steps / 10``
=========================  ==========================================================================

Source text is untrusted: it is compiled and run in the sandbox of :mod:`rewards_api.envs.sandbox`
(RestrictedPython, safe built-ins, imports of ``math``, ``random`` and ``statistics`` only). A process that
runs it for other people also installs a :class:`CallGuard` (:mod:`rewards_api.runs.reward_limits`: CPU
time per call and per episode), which every function compiled from source then runs under. Callables
passed from Python are the caller's own code: they run as they are, without sandbox or limits.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import linecache
import math
import numbers
import re
import reprlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .default_reward import DEFAULT_REWARD_SOURCE
from .sandbox import RefusedCode, compile_restricted_source, new_namespace

PARAM_KEYS: tuple[str, ...] = (
    "is_alive", "observation", "radars", "direction", "rotational_velocity", "steering_angle",
    "car_location", "x", "y", "heading", "speed", "progress", "steps", "distance_from_center",
    "track_width", "is_left_of_center", "is_offtrack", "closest_waypoints", "waypoints",
    "track_length", "all_wheels_on_track", "is_reversed", "lap_time",
)
"""Every key of the ``params`` dict given to a reward function."""

PARAM_DESCRIPTIONS: dict[str, str] = {
    "is_alive": "True while the car is on the asphalt after this step",
    "observation": "the 5 radar distances in pixels, right to left (the network's inputs)",
    "radars": "the same 5 radar distances in pixels, right to left",
    "direction": "which way the car steers: -1 left, 1 right, 0 straight on",
    "rotational_velocity": "degrees the car turns in a step (classic: 15; racing: this step's turn)",
    "steering_angle": "the front wheels' angle in degrees, + left (classic: +15, -15 or 0; racing: the "
                      "real angle, less than commanded where the grip ends)",
    "car_location": "the car's position [x, y] in pixels",
    "x": "the car's x in pixels (to the right)",
    "y": "the car's y in pixels (downwards, as in the track picture)",
    "heading": "the car's heading in degrees, (-180, 180], counter-clockwise, 0 = east",
    "speed": "classic: pixels driven per step (10, 1 m/s); racing: the real speed in m/s (0-4)",
    "progress": "per cent of the lap driven, 0-100",
    "steps": "steps in this episode, this one included (a step is 0.1 s)",
    "distance_from_center": "pixels from the centre line of the track",
    "track_width": "the track's width in pixels",
    "is_left_of_center": "True when the car is left of the centre line",
    "is_offtrack": "True when the car left the asphalt (the opposite of is_alive)",
    "closest_waypoints": "[previous, next] indices into waypoints around the car",
    "waypoints": "the centre line's (x, y) points, in driving order",
    "track_length": "the centre line's length in pixels",
    "all_wheels_on_track": "True while all four wheels are on the asphalt (not just the car's centre)",
    "is_reversed": "True when the car faces the wrong way round the track",
    "lap_time": "seconds since the lap started (simulated: steps / 10)",
}
"""One line on each ``params`` key, for people writing reward functions (the web lab's reference)."""



EXAMPLE_REWARDS: dict[str, str] = {
    "Stay alive": DEFAULT_REWARD_SOURCE,
    "Keep to the centre": '''def reward_function(params):
    """The closer to the centre line, the more reward; nothing off the track."""
    if not params["is_alive"]:
        return 0
    half_width = params["track_width"] / 2
    return max(0.0, 1 - params["distance_from_center"] / half_width)
''',
    "Go fast on straights": '''def reward_function(params):
    """Reward driving straight on when the road ahead is clear, and progress round the lap."""
    if not params["is_alive"]:
        return 0
    ahead = params["radars"][2]  # the middle radar looks straight ahead
    straight_on = params["direction"] == 0
    reward = 1 + params["progress"] / 100
    if straight_on and ahead > 100:
        reward += 1
    return reward
''',
}
"""Starter reward functions by title: each one passes the server's check and teaches something."""

_FLOAT_MAX = sys.float_info.max
_MESSAGE_LIMIT = 300  # characters of an exception's text quoted in an error
RewardCallable = Callable[[dict[str, Any]], Any]
_counter = itertools.count(1)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class RewardFunctionError(ValueError):
    """A reward function could not be loaded, raised an exception, or returned a bad value.

    ``problem`` says what went wrong; ``line`` and ``code`` point at the user's line when known; ``detail``
    is the problem followed by the line.
    """

    def __init__(self, problem: str, line: int | None = None, code: str | None = None) -> None:
        problem = _ADDRESS.sub("", problem)  # "<generator object f at 0x7fa0...>": the process's heap layout
        self.problem = problem
        self.line = line
        self.code = code
        where = ""
        if line is not None:
            where = f" (line {line}" + (f": {code}" if code else "") + ")"
        self.detail = problem + where
        super().__init__(f"reward_function: {self.detail}")


class CallGuard(Protocol):
    """Limits around calls of untrusted reward code (see :mod:`rewards_api.runs.reward_limits`).

    ``enter`` is called before a group of calls of the code compiled as ``filename`` and ``leave`` after
    it, with the number of calls in the group (0 while the module's top level runs) and the most steps
    into its episode that a car of the group is, however the group ended. ``leave`` raises
    :class:`RewardFunctionError` when a limit was passed. The steps are read from the params dicts before
    the calls, and only while ``wants_steps`` (the user's code may change the dicts it is given, and
    limits depend only on what it cannot touch); 0 when not read.
    """

    wants_steps: bool

    def enter(self, filename: str | None) -> None: ...

    def leave(self, calls: int, steps: int) -> None: ...


_call_guard: CallGuard | None = None


def set_call_guard(guard: CallGuard | None) -> CallGuard | None:
    """Make ``guard`` the one that reward functions compiled from source from now on run under (None: no
    limits); returns the previous one. Functions already compiled keep theirs."""
    global _call_guard
    previous, _call_guard = _call_guard, guard
    return previous


def get_call_guard() -> CallGuard | None:
    """The guard that functions compiled from source now get, or None."""
    return _call_guard


class RewardFunction:
    """A loaded reward function: the callable, its source text (if any) and batched calling.

    ``guard`` (functions compiled from source in a process with limits) wraps every group of calls.
    """

    def __init__(self, fn: RewardCallable, source: str | None = None, guard: CallGuard | None = None) -> None:
        self.fn = fn
        self.source = source
        self.guard = guard
        code = getattr(fn, "__code__", None)
        self._filename = code.co_filename if code is not None else None

    def __call__(self, params: dict[str, Any]) -> float:
        return self.one(params)

    def one(self, params: dict[str, Any]) -> float:
        """The reward for one params dict, as a float (errors as in :meth:`batch`)."""
        guard = self.guard
        if guard is None:
            return self._one(params)
        steps = _steps_of((params,)) if guard.wants_steps else 0
        guard.enter(self._filename)
        try:
            reward = self._one(params)
        except BaseException:
            guard.leave(1, steps)  # a limit that was passed is reported instead of what it interrupted
            raise
        guard.leave(1, steps)
        return reward

    def batch(self, params_list: Sequence[dict[str, Any]]) -> np.ndarray:
        """Call the function once per params dict; return the rewards as a float64 array.

        Raises :class:`RewardFunctionError` naming the problem and the user's line.
        """
        guard = self.guard
        if guard is None:
            return self._batch(params_list)
        steps = _steps_of(params_list) if guard.wants_steps else 0
        guard.enter(self._filename)
        try:
            rewards = self._batch(params_list)
        except BaseException:
            guard.leave(len(params_list), steps)  # a limit passed is reported instead of what it interrupted
            raise
        guard.leave(len(params_list), steps)
        return rewards

    def _one(self, params: dict[str, Any]) -> float:
        try:
            result = self.fn(params)
        except Exception as exc:  # the user's code may raise anything
            raise self._raised(exc) from exc
        kind = type(result)
        if (kind is float and math.isfinite(result)) or (kind is int and -_FLOAT_MAX <= result <= _FLOAT_MAX):
            return float(result)
        return self._checked(result, params)

    def _batch(self, params_list: Sequence[dict[str, Any]]) -> np.ndarray:
        fn = self.fn
        try:
            results = [fn(p) for p in params_list]
        except Exception as exc:  # the user's code may raise anything
            raise self._raised(exc) from exc
        if set(map(type, results)) <= {int, float}:
            try:
                rewards = np.array(results, dtype=np.float64)
            except OverflowError:
                rewards = None
            if rewards is not None and np.isfinite(rewards).all():
                return rewards
        return np.array(
            [self._checked(r, p) for r, p in zip(results, params_list, strict=True)], dtype=np.float64
        )

    def _checked(self, value: Any, params: dict[str, Any]) -> float:
        """The reward as a float, or a RewardFunctionError saying why it is not a usable number."""
        if isinstance(value, numbers.Real):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                return number
            problem = f"returned {_short(value)}: a reward must be a finite number, not NaN or infinity"
        else:
            problem = (
                f"returned {_short(value)} (a {type(value).__name__}): it must return a number, "
                "such as `return 1.0`"
            )
        problem += f", at step {params.get('steps', '?')}"
        line = _return_line(self.fn, params)
        raise RewardFunctionError(problem, line, _quote(self._filename, line))

    def _raised(self, exc: Exception) -> RewardFunctionError:
        return _error_from_exception(exc, self._filename)


def _steps_of(params_list: Sequence[Mapping[str, Any]]) -> int:
    """The most ``steps`` among params dicts not yet given to the user's code (what the simulator wrote)."""
    try:
        return max((int(params.get("steps", 1)) for params in params_list), default=0)
    except (TypeError, ValueError):  # a caller's own dicts without a count: no episode estimate
        return 0


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def _short(value: Any, limit: int = 60) -> str:
    """A short ``repr``, cheap even for a huge value (reprlib looks at the first items only)."""
    try:
        shown = _REPR.repr(value)
    except ValueError:  # an int too long to print
        shown = f"an int of {value.bit_length()} bits" if isinstance(value, int) else "a value"
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _quote(filename: str | None, line: int | None) -> str | None:
    """The text of the user's ``line``, stripped, when it is known."""
    if filename is None or line is None:
        return None
    return linecache.getline(filename, line).strip() or None


def _error_from_exception(exc: Exception, filename: str | None) -> RewardFunctionError:
    """A RewardFunctionError for an exception, pointing at the deepest line of the user's code."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, MemoryError):
        problem = ("used too much memory (MemoryError): a reward function must not build huge lists, strings "
                   "or numbers")
        return RewardFunctionError(problem, line, _quote(filename, line))
    try:
        text = str(exc)
    except Exception:  # e.g. an int too long to print in its message
        text = "(its message cannot be shown)"
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 3] + "..."
    problem = f"raised {type(exc).__name__}: {text}"
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        close = difflib.get_close_matches(exc.args[0], PARAM_KEYS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"its keys are: {', '.join(PARAM_KEYS)}"
        problem += f" (params has no such key; {hint})"
    return RewardFunctionError(problem, line, _quote(filename, line))


def _return_line(fn: RewardCallable, params: dict[str, Any]) -> int | None:
    """Line of the ``return`` that ``fn(params)`` leaves through, found by tracing one more call."""
    target = getattr(fn, "__code__", None)
    if target is None:
        return None
    line: int | None = None

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal line
        if frame.f_code is not target:
            return None
        if event == "return":
            line = frame.f_lineno
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn(params)
    except Exception:  # only the line is wanted here; the value was already judged
        pass
    finally:
        sys.settrace(previous)
    return line


def compile_reward_source(source: str, filename: str | None = None) -> RewardFunction:
    """Compile reward source text once, in the sandbox, and return its ``reward_function``.

    Raises :class:`RewardFunctionError` for a syntax error, code the sandbox refuses (what and the fix),
    an error while the module runs, or a missing or malformed ``reward_function``. The function runs
    under the process's :class:`CallGuard`, if one is installed (so does the module's top level, here).
    """
    if not isinstance(source, str):
        raise RewardFunctionError(f"the source must be text, not {type(source).__name__}")
    if not source.strip():
        raise RewardFunctionError("the source is empty: define `def reward_function(params): ...`")
    filename = filename or f"<reward_function-{next(_counter)}>"
    # Registering the text lets tracebacks and our messages quote the user's lines.
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    try:
        code = compile_restricted_source(source, filename)
    except SyntaxError as exc:
        text = (exc.text or "").strip() or None
        raise RewardFunctionError(f"syntax error: {exc.msg}", exc.lineno, text) from None
    except RefusedCode as exc:
        raise RewardFunctionError(exc.problem, exc.line, _quote(filename, exc.line)) from None
    except ValueError as exc:  # a NUL character in the text
        raise RewardFunctionError(f"the source is not valid Python text: {exc}") from None
    except (RecursionError, MemoryError):
        raise RewardFunctionError("the code is nested too deeply to compile: simplify it") from None
    namespace = new_namespace()
    guard = _call_guard
    _run_module(code, namespace, filename, guard)
    fn = namespace.get("reward_function")
    if fn is None:
        raise RewardFunctionError(
            "the source does not define `reward_function`: add `def reward_function(params):`"
        )
    _check_signature(fn)
    return RewardFunction(fn, source, guard)


def _run_module(code: Any, namespace: dict[str, Any], filename: str, guard: CallGuard | None) -> None:
    """Run the module's top level (under ``guard``): a limit passed wins over the error it caused."""
    failure: RewardFunctionError | None = None
    if guard is not None:
        guard.enter(filename)
    try:
        exec(code, namespace)
    except Exception as exc:  # the user's code may raise anything
        failure = _error_from_exception(exc, filename)
        failure.__cause__ = exc
    finally:
        if guard is not None:
            guard.leave(0, 0)
    if failure is not None:
        raise failure


def _check_signature(fn: Any) -> None:
    if not callable(fn):
        raise RewardFunctionError(
            f"`reward_function` is a {type(fn).__name__}, not a function: "
            "define it with `def reward_function(params):`"
        )
    try:
        inspect.signature(fn).bind({})
    except TypeError:
        raise RewardFunctionError(
            "`reward_function` must take exactly one argument, `params`"
        ) from None
    except ValueError:  # builtins without a signature: let them be tried
        pass


def load_reward_function(
    reward_function: str | RewardCallable | RewardFunction | None,
) -> RewardFunction | None:
    """Accept source text, a callable, a loaded :class:`RewardFunction`, or ``None`` (the default:
    +1 while the car is on the track, computed without calling Python per car)."""
    if reward_function is None or isinstance(reward_function, RewardFunction):
        return reward_function
    if isinstance(reward_function, str):
        return compile_reward_source(reward_function)
    if callable(reward_function):
        _check_signature(reward_function)
        return RewardFunction(reward_function)
    raise RewardFunctionError(
        f"expected Python source text or a callable, not {type(reward_function).__name__}"
    )


def sample_params(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A plausible ``params`` dict (a car on a straight at the start line), for checking functions."""
    radars = [60.0, 80.0, 200.0, 80.0, 60.0]
    params: dict[str, Any] = {
        "is_alive": True, "observation": radars, "radars": radars, "direction": 0,
        "rotational_velocity": 15.0, "steering_angle": 0.0, "car_location": (100.0, 50.0),
        "x": 100.0, "y": 50.0, "heading": 0.0, "speed": 10.0, "progress": 0.5, "steps": 1,
        "distance_from_center": 0.0, "track_width": 70.0, "is_left_of_center": False,
        "is_offtrack": False, "closest_waypoints": [0, 1],
        "waypoints": ((90.0, 50.0), (95.0, 50.0), (100.0, 50.0), (105.0, 50.0)),
        "track_length": 2000.0, "all_wheels_on_track": True, "is_reversed": False, "lap_time": 0.1,
    }
    params.update(overrides or {})
    return params
