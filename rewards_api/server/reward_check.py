"""Checking a reward function in a child process: user code never runs inside the server.

``check_reward_source`` starts ``python -m rewards_api.server.reward_check``, hands it the source on
stdin, and reads one JSON line back: ``{"ok": true}`` or ``{"ok": false, "message": ..., "line": ...}``.
A function that does not finish within the timeout (an endless loop) is killed and refused.
Issue 5 hardens this child (restricted builtins, memory and CPU limits).
"""

from __future__ import annotations

import json
import subprocess
import sys

from ..params import ParameterError

CHECK_TIMEOUT = 10.0
"""Seconds a check may take, start-up of the child included."""


def check_reward_source(source: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise :class:`ParameterError` for ``reward_function`` if the source does not compile, raises, or
    returns a non-number on sample params; checked in a child process."""
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
        raise ParameterError("reward_function", source,
                             f"checking it failed (exit code {done.returncode}): does it exit or use too "
                             "much memory?") from None
    if not answer.get("ok"):
        raise ParameterError("reward_function", source, answer["message"], line=answer.get("line"))


def main() -> None:
    from ..params import check_reward_function

    source = sys.stdin.read()
    try:
        check_reward_function(source)
    except ParameterError as exc:
        print(json.dumps({"ok": False, "message": exc.accepted, "line": exc.line}))
        return
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main()
