"""Checking a reward function in a child process: user code never runs inside the server.

``check_reward_source`` starts ``python -m rewards_api.server.reward_check``, hands it the source on
stdin, and reads one JSON line back: ``{"ok": true}`` or ``{"ok": false, "message": ..., "line": ...}``.
The child compiles the function in the sandbox and calls it on sample cars of every built-in track (as
:func:`rewards_api.params.check_reward_function` does, without importing pydantic: the child starts in
~0.5 s) under limits (:mod:`rewards_api.runs.reward_limits`): 1 s of CPU per call, ``CHECK_CPU_BUDGET``
seconds of CPU in all (the kernel ends it past that), ``CHECK_MEMORY_HEADROOM`` bytes of memory beyond
its start. A child that does not answer within the timeout is killed; either way the function is refused,
saying why.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHECK_TIMEOUT = 10.0
"""Seconds a check may take, start-up of the child included."""


def check_reward_source(source: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise :class:`~rewards_api.params.ParameterError` for ``reward_function`` if the source does not
    compile in the sandbox, raises, runs too long, uses too much memory, or returns a non-number on sample
    params; checked in a child process."""
    from ..params import ParameterError
    from ..runs.reward_limits import explain_exit

    if not isinstance(source, str):
        raise ParameterError("reward_function", source, "send the Python source as text")
    try:
        done = subprocess.run([sys.executable, "-m", __name__], input=source, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ParameterError("reward_function", source,
                             f"it did not return within {timeout:g} s on sample params: does it loop "
                             "forever?") from None
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        message = explain_exit(done.returncode, f"checking it failed (exit code {done.returncode})")
        raise ParameterError("reward_function", source, message) from None
    if not answer.get("ok"):
        raise ParameterError("reward_function", source, answer["message"], line=answer.get("line"))


def main() -> None:
    """The child: imports, then limits, then the check of the source read from stdin; one JSON line out."""
    from ..envs.reward import RewardFunctionError, compile_reward_source
    from ..envs.samples import call_on_samples
    from ..runs.reward_limits import CHECK_CPU_BUDGET, CHECK_MEMORY_HEADROOM, EPISODE_CPU_LIMIT, install

    install(memory_headroom=CHECK_MEMORY_HEADROOM, cpu_backstop=CHECK_CPU_BUDGET, refresh=False)
    source = sys.stdin.read()
    try:
        call_on_samples(compile_reward_source(source), EPISODE_CPU_LIMIT)
    except RewardFunctionError as exc:
        print(json.dumps({"ok": False, "message": exc.detail, "line": exc.line}))
        return
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main()
