"""The reward sandbox: a corpus of hostile reward functions, each refused with the problem and its line or
contained, and legitimate functions (math, statistics, random, comprehensions, helpers) still working."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from rewards_api.envs.reward import (
    DEFAULT_REWARD_SOURCE,
    RewardFunctionError,
    compile_reward_source,
    sample_params,
)
from rewards_api.envs.samples import CHECK_TRACKS, check_samples
from rewards_api.envs.sandbox import ALLOWED_MODULES, RewardPolicy
from rewards_api.params import ParameterError, check_reward_function
from rewards_api.server.reward_check import check_reward_source


def fn_source(*body: str, header: str = "") -> str:
    """A reward function with ``body`` lines (line 2 on, after ``header`` lines)."""
    lines = "".join(f"    {line}\n" for line in body)
    return f"{header}def reward_function(params):\n{lines}    return 1.0\n"


# (source, words the refusal must contain, the line it must name)
REFUSED_AT_COMPILE: dict[str, tuple[str, str, int]] = {
    "import os": ("import os\n" + fn_source(), "importing `os` is not allowed", 1),
    "import subprocess": (fn_source("import subprocess"), "importing `subprocess` is not allowed", 2),
    "import socket": (fn_source("import socket as s"), "importing `socket` is not allowed", 2),
    "from os import": ("from os import system\n" + fn_source(), "importing `os` is not allowed", 1),
    "import os.path": (fn_source("import os.path"), "importing `os.path`", 2),
    "relative import": ("from . import sandbox\n" + fn_source(), "importing `.`", 1),
    "from math import *": ("from math import *\n" + fn_source(), "import *", 1),
    "open": (fn_source("open('/tmp/rewards-canary', 'w')"), "`open` is not available", 2),
    "__import__": (fn_source("__import__('os').system('true')"), "`__import__` is not allowed", 2),
    "dunder escape": (fn_source("().__class__.__mro__[1].__subclasses__()"), "`.__class__`", 2),
    "dunder of a param": (fn_source("params['waypoints'].__class__"), "`.__class__`", 2),
    "__builtins__": (fn_source("b = __builtins__"), "`__builtins__` is not allowed", 2),
    "__traceback__": (fn_source("try:", "    1 / 0", "except Exception as e:", "    t = e.__traceback__"),
                      "`.__traceback__`", 5),
    "gi_frame": (fn_source("g = (x for x in ())", "f = g.gi_frame"), "`.gi_frame`", 3),
    "f_globals": (fn_source("g = (x for x in ())", "n = g.gi_frame.f_globals"), "is not allowed", 3),
    "f_builtins": (fn_source("b = params.f_builtins"), "`.f_builtins`", 2),
    "f_back": (fn_source("b = params.f_back"), "`.f_back`", 2),
    "gi_code": (fn_source("c = (x for x in ()).gi_code"), "`.gi_code`", 2),
    "tb_frame": (fn_source("f = params.tb_frame"), "`.tb_frame`", 2),
    "str.format": (fn_source("s = '{0.__class__}'.format(1)"), "`.format()` is not allowed", 2),
    "str.format_map": (fn_source("s = '{x}'.format_map(params)"), "`.format_map()` is not allowed", 2),
    "f-string escape": (fn_source("s = f'{params.__class__}'"), "`.__class__`", 2),
    "mro": (fn_source("m = int.mro()"), "`.mro` is not allowed", 2),
    "eval": (fn_source("eval('1')"), "`eval` is not available", 2),
    "exec": (fn_source("exec('x = 1')"), "`exec` is not available", 2),
    "compile": (fn_source("c = compile('1', 'x', 'eval')"), "`compile` is not available", 2),
    "getattr": (fn_source("g = getattr(params, 'get')"), "`getattr` is not available", 2),
    "setattr": (fn_source("setattr(params, 'x', 1)"), "`setattr` is not available", 2),
    "vars": (fn_source("v = vars()"), "`vars` is not available", 2),
    "globals": (fn_source("g = globals()"), "`globals` is not available", 2),
    "locals": (fn_source("g = locals()"), "`locals` is not available", 2),
    "dir": (fn_source("d = dir(params)"), "`dir` is not available", 2),
    "type": (fn_source("t = type(params)"), "`type` is not available", 2),
    "object": (fn_source("o = object"), "`object` is not available", 2),
    "super": (fn_source("s = super()"), "`super` is not available", 2),
    "breakpoint": (fn_source("breakpoint()"), "`breakpoint`", 2),
    "help": (fn_source("help()"), "`help` is not available", 2),
    "input": (fn_source("x = input()"), "`input` is not available", 2),
    "memoryview": (fn_source("m = memoryview(b'x')"), "`memoryview` is not available", 2),
    "BaseException": (fn_source("try:", "    pass", "except BaseException:", "    pass"),
                      "`BaseException` is not available", 4),
    "class": ("class Car:\n    pass\n" + fn_source(), "class definitions are not allowed", 1),
    "lambda default": (fn_source("f = lambda x=().__class__: x"), "`.__class__`", 2),
    "decorator": (fn_source(header="@getattr\n"), "`getattr` is not available", 1),
    "module internals": ("import random\n" + fn_source("o = random._os"), "`._os`", 3),
    "underscore name": (fn_source("_x = 1"), "`_x` is not allowed", 2),
    "nonlocal": (fn_source("x = 1", "def f():", "    nonlocal x"), "`nonlocal` is not allowed", 4),
    "async": ("async def f():\n    pass\n" + fn_source(), "`async def` is not allowed", 1),
    "except*": (fn_source("try:", "    pass", "except* ValueError:", "    pass"), "`except*`", 2),
    "finally continue": (fn_source("while True:", "    try:", "        pass", "    finally:",
                                   "        continue"),
                         "`continue` in a `finally:` block", 6),
    # Finalizers (issue 14): a generator kept after the call runs this clean-up when it is collected.
    "yield in try/finally": ("def g():\n    try:\n        yield 1\n    finally:\n        while True:\n"
                             "            pass\n" + fn_source("params['kept'] = g()", "next(params['kept'])"),
                             "`yield` inside a `try` statement is not allowed", 3),
    "yield in try/except": ("def slow():\n    while True:\n        pass\ndef g():\n    try:\n"
                            "        yield 1\n    except slow():\n        pass\n" + fn_source(),
                            "`yield` inside a `try` statement", 6),
    "yield from in try": ("def g():\n    try:\n        pass\n    finally:\n        yield from [1]\n"
                          + fn_source(), "`yield from` inside a `try` statement", 5),
    "yield in with": ("def g(m):\n    with m:\n        yield 1\n" + fn_source(),
                      "`yield` inside a `with` statement", 3),
    "yield in a default": ("def g():\n    try:\n        def h(a=(yield)):\n            pass\n    finally:\n"
                           "        pass\n" + fn_source(), "`yield` inside a `try` statement", 3),
}


@pytest.mark.parametrize("name", list(REFUSED_AT_COMPILE))
def test_hostile_code_is_refused_at_compile_time_with_the_problem_and_line(name: str) -> None:
    source, problem, line = REFUSED_AT_COMPILE[name]
    with pytest.raises(RewardFunctionError) as caught:
        compile_reward_source(source)
    assert problem in caught.value.problem, caught.value.problem
    assert caught.value.line == line
    assert caught.value.code  # the user's line is quoted


# Code that compiles but fails on the sample params: refused when written, with the line.
REFUSED_AT_CHECK: dict[str, tuple[str, str, int]] = {
    "module has no sys": ("import statistics\n" + fn_source("s = statistics.sys"), "AttributeError", 3),
    "module has no Random": ("import random\n" + fn_source("r = random.Random"), "AttributeError", 3),
    "write to a module": ("import math\n" + fn_source("math.pi = 3"), "TypeError", 3),
    "print to a file": (fn_source("print('x', file=params)", "return params['nope']"), "KeyError", 3),
    "not a number": ("def reward_function(params):\n    return 'fast'\n", "it must return a number", 2),
    "None": ("def reward_function(params):\n    if params['is_alive']:\n        return 1\n",
             "returned None", 2),
    "NaN": ("def reward_function(params):\n    return float('nan')\n", "a reward must be a finite number", 2),
    "infinity": ("def reward_function(params):\n    return 10.0 ** 400\n", "OverflowError", 2),
    "huge int": ("def reward_function(params):\n    return 10 ** 400\n", "finite number", 2),
    "list": ("def reward_function(params):\n    return [1.0]\n", "a list", 2),
    "raise": (fn_source("raise ValueError('no')"), "raised ValueError: no", 2),
    "off-track division": ("def reward_function(params):\n    return 1 / min(params['radars'])\n",
                           "ZeroDivisionError", 2),
    "recursion": ("def f(x):\n    return f(x)\n" + fn_source("f(1)"), "RecursionError", 2),
    "swallowed time-out": (fn_source("while True:", "    try:", "        while True:", "            pass",
                                     "    except:", "        pass"), "more than 1 s of CPU time", 4),
}


@pytest.mark.parametrize("name", list(REFUSED_AT_CHECK))
def test_hostile_or_broken_code_is_refused_by_the_check_with_the_line(name: str, tmp_path: Path) -> None:
    source, problem, line = REFUSED_AT_CHECK[name]
    with pytest.raises(ParameterError) as caught:
        check_reward_function(source)
    assert problem in str(caught.value), str(caught.value)
    assert caught.value.line == line and f"(line {line}" in str(caught.value)
    assert isinstance(caught.value.__cause__, RewardFunctionError)


def test_a_module_namespace_is_read_only_and_private() -> None:
    fn = compile_reward_source("import random\ndef reward_function(params):\n    random.seed(1)\n"
                               "    return random.random()\n")
    state = random.getstate()
    first = fn(sample_params())
    assert random.getstate() == state  # the process's random module is untouched
    assert fn(sample_params()) == first  # its own generator, seeded by the function
    with pytest.raises(RewardFunctionError, match="TypeError"):
        compile_reward_source("import math\nmath.pi = 3\ndef reward_function(params):\n    return 1\n")
    assert math.pi == 3.141592653589793
    assert compile_reward_source("import math\ndef reward_function(p):\n    return math.pi\n")(
        sample_params()) == math.pi


def test_only_the_allowed_modules_and_their_public_functions_are_offered() -> None:
    assert ALLOWED_MODULES == ("math", "random", "statistics")
    fn = compile_reward_source("import math, random, statistics\ndef reward_function(p):\n    return 1\n")
    namespace = fn.fn.__globals__
    for name in ALLOWED_MODULES:
        members = vars(namespace[name])
        assert members and all(not key.startswith("_") for key in members)
        assert not any(type(value).__name__ == "module" for value in members.values()), name


@pytest.mark.parametrize("source", [
    "def reward_function(params):\n    while True:\n        pass\n",
    "def reward_function(params):\n    x = 'a' * 10**10\n    return 1\n",
    "def reward_function(params):\n    x = [0] * 10**9\n    return 1\n",
    "def reward_function(params):\n    return sum(range(10**12))\n",
], ids=["endless loop", "memory bomb", "huge list", "C operation"])
def test_runaway_code_is_refused_by_the_check_child_within_seconds(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(ParameterError) as caught:
        check_reward_source(source)
    message = str(caught.value)
    assert any(words in message for words in ("more than 1 s of CPU", "too much memory",
                                              "could not be interrupted")), message
    assert time.monotonic() - started < 9


LEGIT = {
    "the default": DEFAULT_REWARD_SOURCE,
    "centre line": (
        "def reward_function(params):\n"
        "    half = params['track_width'] / 2\n"
        "    return max(0.0, 1.0 - params['distance_from_center'] / half)\n"
    ),
    "heading to the next waypoint": (
        "import math\n"
        "def reward_function(params):\n"
        "    waypoints = params['waypoints']\n"
        "    prev, nxt = params['closest_waypoints']\n"
        "    (x0, y0), (x1, y1) = waypoints[prev], waypoints[nxt]\n"
        "    direction = math.degrees(math.atan2(y0 - y1, x1 - x0))\n"
        "    diff = abs(direction - params['heading'])\n"
        "    if diff > 180:\n"
        "        diff = 360 - diff\n"
        "    return 1.0 - diff / 180\n"
    ),
    "helpers, comprehensions, statistics": (
        "import statistics\nfrom math import sqrt, hypot\n"
        "SCALE = 200.0\n"
        "def spread(values):\n"
        "    return statistics.pstdev(values) if len(values) > 1 else 0.0\n"
        "def reward_function(params):\n"
        "    radars = sorted(r / SCALE for r in params['radars'])\n"
        "    total = 0\n"
        "    for i, r in enumerate(radars[:3]):\n"
        "        total += i * r\n"
        "    x, y = params['car_location']\n"
        "    near = min(params['waypoints'][:50], key=lambda p: hypot(p[0] - x, p[1] - y))\n"
        "    lengths = {k: len(str(v)) for k, v in params.items() if k != 'waypoints'}\n"
        "    print(f'{total:.2f}', lengths)\n"
        "    try:\n"
        "        extra = params['missing']\n"
        "    except KeyError:\n"
        "        extra = 0\n"
        "    return sqrt(abs(total)) + spread(radars) + extra + (near[0] > -1) + any(params['radars'])\n"
    ),
    "decorator and generator": (
        "def clipped(f):\n"
        "    def inner(params):\n"
        "        return min(max(f(params), -1.0), 1.0)\n"
        "    return inner\n"
        "def beams(params):\n"
        "    yield from params['radars']\n"
        "@clipped\n"
        "def reward_function(params):\n"
        "    first = next(beams(params))\n"
        "    return first / 10 if params['is_alive'] else -5\n"
    ),
    "bare except": (
        "def reward_function(params):\n"
        "    try:\n"
        "        return params['speed'] / params['steps']\n"
        "    except:\n"
        "        return 0.0\n"
    ),
}


@pytest.mark.parametrize("name", list(LEGIT))
def test_legitimate_reward_functions_work_on_every_track(name: str) -> None:
    source = LEGIT[name]
    assert check_reward_function(source) == source
    fn = compile_reward_source(source)
    rewards = fn.batch([params for _, params in check_samples()])
    assert len(rewards) == 2 * 8 * len(CHECK_TRACKS) and all(math.isfinite(r) for r in rewards)


def test_sample_params_are_real_poses_on_every_track() -> None:
    from rewards_api.envs.reward import PARAM_KEYS

    samples = check_samples()
    assert {label.split(" on track ")[1] for label, _ in samples} == {
        f"{mode}-{number}" for mode, number in CHECK_TRACKS}
    for label, params in samples:
        assert set(params) == set(PARAM_KEYS), label
        assert params["is_alive"] == ("left the track" not in label), label
        assert params["is_offtrack"] is not params["is_alive"]
        if params["is_alive"]:
            assert params["distance_from_center"] <= params["track_width"] / 2
            assert min(params["radars"]) > 0 and max(params["radars"]) <= 200
        else:
            assert params["radars"] == [0.0] * 5
        assert 1 <= params["steps"] <= 5  # a few steps into an episode
    params = samples[0][1]
    params["radars"].append(1)  # a function may change what it is given: the next check gets new dicts
    assert len(check_samples()[0][1]["radars"]) == 5


def test_sample_radars_match_the_simulator() -> None:
    from rewards_api.envs.car_race import CarRaceCore
    from rewards_api.envs.samples import _track_columns
    from rewards_api.envs.tracks import builtin_track

    core = CarRaceCore(builtin_track("training", 1), 1, None)  # builds the track's radar maps (~1 s)
    for row in _track_columns("training", 1)[1]:
        alive, radars, _, x, y, heading, _, _, distance, left, segment = row[:11]
        core.x[:], core.y[:], core.heading[:], core.segment[:] = x, y, heading, segment
        core._locate()
        assert core._read_radars()[0].tolist() == list(radars)
        assert bool(~core.offtrack[0]) == alive and bool(core.left_of_center[0]) == left
        assert core.center_offset[0] == pytest.approx(distance)


def test_the_policy_reports_problems_in_our_words() -> None:
    import ast

    policy = RewardPolicy()
    policy.visit(ast.parse("x = y.__dict__\nprint = 1\n"))
    assert [line for line, _ in policy.problems] == [1, 2]
    assert "`.__dict__` is not allowed" in policy.problems[0][1]
    assert "`print` is a reserved name" in policy.problems[1][1]


def test_generators_that_cannot_run_code_when_collected_still_work() -> None:
    source = ("def pairs(xs):\n    for i in range(len(xs) - 1):\n        yield xs[i], xs[i + 1]\n"
              "def helper():\n    try:\n        def inner():\n            yield 1\n    finally:\n"
              "        pass\n    return inner\n"
              "def reward_function(params):\n    kept = pairs(params['radars'])\n    next(kept)\n"
              "    params['kept'] = kept\n    return sum(1 for a, b in pairs(params['radars']) if a < b)"
              " + sum(helper()())\n")
    assert compile_reward_source(source)(sample_params()) == 3.0
