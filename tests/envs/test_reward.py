"""Reward functions: loading from source, calling in batches, and errors that name the problem and line."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rewards_api.envs.reward import (
    DEFAULT_REWARD_SOURCE,
    PARAM_KEYS,
    RewardFunctionError,
    compile_reward_source,
    load_reward_function,
    sample_params,
)


def test_default_source_rewards_staying_alive() -> None:
    fn = compile_reward_source(DEFAULT_REWARD_SOURCE)
    assert fn(sample_params()) == 1.0
    assert fn(sample_params({"is_alive": False})) == 0.0


def test_batch_returns_one_float_per_params() -> None:
    fn = compile_reward_source("def reward_function(params):\n    return params['x'] * 2\n")
    rewards = fn.batch([sample_params({"x": float(i)}) for i in range(4)])
    assert rewards.dtype == np.float64
    assert rewards.tolist() == [0.0, 2.0, 4.0, 6.0]


@pytest.mark.parametrize("value", ["True", "3", "2.5", "statistics.mean([1, 2])", "random.random()"])
def test_any_real_number_is_accepted(value: str) -> None:
    source = f"import random, statistics\ndef reward_function(params):\n    return {value}\n"
    fn = compile_reward_source(source)
    assert math.isfinite(fn(sample_params()))


def test_any_real_number_is_accepted_from_a_callable() -> None:
    # Source cannot reach fractions (not an allowed import); a trusted callable can return any Real.
    fn = load_reward_function(lambda params: Fraction(1, 2))
    assert fn(sample_params()) == 0.5 and fn.batch([sample_params()]).tolist() == [0.5]


def test_callables_are_accepted_and_checked() -> None:
    assert load_reward_function(lambda params: 2)(sample_params()) == 2.0
    assert load_reward_function(None) is None
    with pytest.raises(RewardFunctionError, match="exactly one argument"):
        load_reward_function(lambda a, b: 1)
    with pytest.raises(RewardFunctionError, match="source text or a callable"):
        load_reward_function(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "problem", "line"),
    [
        ("def reward_function(params)\n    return 1\n", "syntax error", 1),
        ("x = 1\n", "does not define `reward_function`", None),
        ("reward_function = 3\n", "not a function", None),
        ("import no_such_module_here\ndef reward_function(p):\n    return 1\n",
         "importing `no_such_module_here` is not allowed", 1),
        ("x = {}['k']\ndef reward_function(p):\n    return 1\n", "KeyError", 1),
        ("", "empty", None),
    ],
)
def test_load_errors_name_the_problem(source: str, problem: str, line: int | None) -> None:
    with pytest.raises(RewardFunctionError, match=problem) as caught:
        compile_reward_source(source)
    assert caught.value.line == line


def test_an_exception_names_its_type_and_the_users_line() -> None:
    source = "def reward_function(params):\n    speed = params['speed']\n    return speed / 0\n"
    fn = compile_reward_source(source)
    with pytest.raises(RewardFunctionError) as caught:
        fn(sample_params())
    error = caught.value
    assert "ZeroDivisionError" in str(error)
    assert error.line == 3
    assert error.code == "return speed / 0"


def test_an_exception_in_a_helper_points_at_the_helper_line() -> None:
    source = (
        "def helper(p):\n"
        "    return p['missing']\n"
        "\n"
        "def reward_function(params):\n"
        "    return helper(params)\n"
    )
    with pytest.raises(RewardFunctionError) as caught:
        compile_reward_source(source)(sample_params())
    assert caught.value.line == 2
    assert "KeyError" in str(caught.value)


def test_a_mistyped_key_suggests_the_right_one() -> None:
    fn = compile_reward_source("def reward_function(params):\n    return params['progres']\n")
    with pytest.raises(RewardFunctionError, match="did you mean 'progress'"):
        fn(sample_params())


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("None", "returned None .a NoneType.: it must return a number"),
        ("'fast'", "returned 'fast' .a str."),
        ("[1, 2]", "a list"),
        ("float('nan')", "returned nan: a reward must be a finite number"),
        ("float('inf')", "returned inf"),
        ("10 ** 400", "finite number"),
        ("1j", "a complex"),
    ],
)
def test_bad_return_values_name_the_problem_and_the_return_line(expression: str, problem: str) -> None:
    source = (
        "def reward_function(params):\n"
        "    if params['x'] < 0:\n"
        "        return 1.0\n"
        f"    return {expression}\n"
    )
    fn = compile_reward_source(source)
    with pytest.raises(RewardFunctionError, match=problem) as caught:
        fn.batch([sample_params({"x": -1.0}), sample_params({"x": 5.0, "steps": 7})])
    assert caught.value.line == 4
    assert caught.value.code == f"return {expression}"
    assert "at step 7" in str(caught.value)


def test_sample_params_has_every_key() -> None:
    assert set(sample_params()) == set(PARAM_KEYS)


@pytest.mark.parametrize("expression", ["10 ** 400", "-(10 ** 400)", "float('nan')", "'1.5'"])
def test_one_and_batch_judge_results_alike(expression: str) -> None:
    fn = compile_reward_source(f"def reward_function(params):\n    return {expression}\n")
    with pytest.raises(RewardFunctionError) as one:
        fn.one(sample_params())
    with pytest.raises(RewardFunctionError) as batch:
        fn.batch([sample_params()])
    assert str(one.value) == str(batch.value) and one.value.line == 2
