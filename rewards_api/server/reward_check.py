"""Checking a reward function in a child process: user code never runs inside the server.

``check_reward_source`` forks a child from a fork server (``multiprocessing``'s "forkserver": a process
started once, which imports the sandbox and computes the sample cars of every built-in track before it
forks anyone), hands it the source, and reads one JSON message back: ``{"ok": true}`` or ``{"ok": false,
"message": ..., "line": ...}``. A fresh interpreter per check cost ~0.5 s of CPU in start-up and imports;
a fork costs milliseconds, so a classroom saving reward functions no longer takes the server's CPU.

The child compiles the function in the sandbox and calls it on the sample cars (as
:func:`rewards_api.params.check_reward_function` does) at a lower CPU priority and under limits
(:mod:`rewards_api.runs.reward_limits`): 1 s of CPU per call, ``CHECK_CPU_BUDGET`` seconds of CPU in all
(the kernel ends it past that), ``CHECK_MEMORY_HEADROOM`` bytes of memory beyond its start. A child that
does not answer within the timeout is killed; either way the function is refused, saying why. The answer is
JSON, never a pickle: the server does not unpickle what a process running user code sends.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from multiprocessing.connection import Connection

CHECK_TIMEOUT = 10.0
"""Seconds a check may take (the fork server's one-off start-up included)."""
CHECKS_AT_ONCE = 2
"""Checks that run at once; more wait their turn."""
CHECK_NICENESS = 5
"""How much lower a check's CPU priority is than the server's."""
_turns = threading.BoundedSemaphore(CHECKS_AT_ONCE)
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload([__name__ + "_preload"])


def check_reward_source(source: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise :class:`~rewards_api.params.ParameterError` for ``reward_function`` if the source does not
    compile in the sandbox, raises, runs too long, uses too much memory, or returns a non-number on sample
    params; checked in a child process."""
    from ..params import ParameterError
    from ..runs.reward_limits import explain_exit

    if not isinstance(source, str):
        raise ParameterError("reward_function", source, "send the Python source as text")
    with _turns:
        receiver, sender = _context.Pipe(duplex=False)
        process = _context.Process(target=_child, args=(sender, source), daemon=True)
        try:
            process.start()
            sender.close()
            if not receiver.poll(timeout):
                raise ParameterError("reward_function", source,
                                     f"it did not return within {timeout:g} s on sample params: does it "
                                     "loop forever?")
            try:
                answer = json.loads(receiver.recv_bytes(1 << 20))
            except (EOFError, OSError, ValueError):
                process.join(2)
                code = process.exitcode
                raise ParameterError("reward_function", source,
                                     explain_exit(code, f"checking it failed (exit code {code})")) from None
        finally:
            if process.is_alive():
                process.kill()
            process.join(5)
            receiver.close()
    if not answer.get("ok"):
        raise ParameterError("reward_function", source, str(answer.get("message")), line=answer.get("line"))


def _child(connection: Connection, source: str) -> None:
    """In the forked child: lower priority, then limits, then the check; one JSON message out."""
    from ..envs.reward import RewardFunctionError, compile_reward_source
    from ..envs.samples import call_on_samples
    from ..runs.reward_limits import CHECK_CPU_BUDGET, CHECK_MEMORY_HEADROOM, EPISODE_CPU_LIMIT, install

    os.nice(CHECK_NICENESS)
    install(memory_headroom=CHECK_MEMORY_HEADROOM, cpu_backstop=CHECK_CPU_BUDGET, refresh=False)
    try:
        call_on_samples(compile_reward_source(source), EPISODE_CPU_LIMIT)
    except RewardFunctionError as exc:
        answer: dict[str, object] = {"ok": False, "message": exc.detail, "line": exc.line}
    else:
        answer = {"ok": True}
    connection.send_bytes(json.dumps(answer).encode())
    connection.close()
