"""Checking a reward function in a child process: user code never runs inside the server.

``check_reward_source`` hands the source to a child forked from the reward checks' fork server
(:mod:`rewards_api.server.reward_check_server`: a small process started once, which imports the sandbox and
computes the sample cars of every built-in track before it forks anyone) and reads one line of JSON back.
A fresh interpreter per check cost ~0.5 s of CPU in start-up and imports; a fork costs a few milliseconds,
so a whole check takes ~15 ms and a classroom saving reward functions does not take the server's CPU.

The child compiles the function in the sandbox and calls it on the sample cars (as
:func:`rewards_api.params.check_reward_function` does) at a lower CPU priority and under limits
(:mod:`rewards_api.runs.reward_limits`): 1 s of CPU per call, ``CHECK_CPU_BUDGET`` seconds of CPU in all
(the kernel ends it past that), ``CHECK_MEMORY_HEADROOM`` bytes of memory beyond its start. A child that
does not answer within the time-out is killed; either way the function is refused, saying why. The answer
is JSON, never a pickle: the server does not unpickle what a process running user code sends.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

from ..runs.child_output import OutputRelay
from .limits import BoundedWork

CHECK_TIMEOUT = 10.0
"""Seconds a check may take (the fork server's one-off start-up included)."""
CHECKS_AT_ONCE = 2
"""Checks that run at once; more wait their turn."""
CHECKS_PER_USER = 2
CHECKS_IN_FLIGHT = 16
"""Checks running or waiting, per user and on the whole server, in the server (:func:`check_reward`); more
are a 429. Those waiting hold no thread."""
MAX_ANSWER_BYTES = 1 << 20

_turns = threading.BoundedSemaphore(CHECKS_AT_ONCE)


class _ForkServer:
    """The fork server process and the socket to it: started on first use, restarted if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "rewards_api.server.reward_check_server", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # its children run user code: see below
            )
        self._control = ours
        # What the fork server and its check children write reaches the server's log only bounded and
        # escaped (rewards_api.runs.child_output): a SyntaxWarning, for one, quotes the user's line.
        assert self._process.stdout is not None
        OutputRelay(self._process.stdout.fileno(), "reward check", keep=self._process.stdout)

    def ensure_running(self) -> None:
        """Start the fork server now (its imports take a moment) rather than on the first check."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self.close_locked()
                self._start()

    def submit(self, connection: socket.socket, timeout: float) -> None:
        """Have a child check the source that will come on ``connection``'s other end."""
        header = json.dumps({"timeout": timeout}).encode()
        for attempt in range(2):
            self.ensure_running()
            with self._lock:
                control = self._control
                try:
                    assert control is not None
                    socket.send_fds(control, [header], [connection.fileno()])
                    return
                except OSError:
                    if attempt == 1:
                        raise
                    self.close_locked()  # the fork server died since: start another

    def close_locked(self) -> None:
        if self._control is not None:
            self._control.close()  # the fork server sees the end of its socket and exits
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


fork_server = _ForkServer()


def check_reward_source(source: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise :class:`~rewards_api.params.ParameterError` for ``reward_function`` if the source does not
    compile in the sandbox, raises, runs too long, uses too much memory, or returns a non-number on sample
    params; checked in a child process."""
    from ..params import ParameterError
    from ..runs.reward_limits import explain_exit

    if not isinstance(source, str):
        raise ParameterError("reward_function", source, "send the Python source as text")
    with _turns:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with ours:
            with theirs:
                fork_server.submit(theirs, timeout)
            ours.sendall(source.encode("utf-8", errors="surrogatepass"))
            ours.shutdown(socket.SHUT_WR)
            line = _read_line(ours, time.monotonic() + timeout)
    if line is None:
        raise ParameterError("reward_function", source,
                             f"it did not return within {timeout:g} s on sample params: does it loop "
                             "forever?")
    try:
        answer = json.loads(line)
    except ValueError:
        answer = {"ok": False, "exit": None}
    if "exit" in answer:
        code = answer["exit"]
        raise ParameterError("reward_function", source,
                             explain_exit(code, f"checking it failed (exit code {code})"))
    if not answer.get("ok"):
        raise ParameterError("reward_function", source, str(answer.get("message")), line=answer.get("line"))


def _read_line(connection: socket.socket, deadline: float) -> bytes | None:
    """The first line ``connection`` sends before ``deadline`` (None if none came in time)."""
    received = b""
    while b"\n" not in received and len(received) < MAX_ANSWER_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        connection.settimeout(remaining)
        try:
            chunk = connection.recv(1 << 16)
        except TimeoutError:
            return None
        if not chunk:
            break
        received += chunk
    return received.split(b"\n", 1)[0]


_server_checks = BoundedWork("reward check", CHECKS_PER_USER, CHECKS_IN_FLIGHT, CHECKS_AT_ONCE,
                             "wait for your checks to answer, then send the next")


async def check_reward(source: str, user: str | None) -> None:
    """:func:`check_reward_source` for a request of ``user``, bounded per user and overall (a 429 beyond,
    at once) and run on :data:`CHECKS_AT_ONCE` threads of its own: a queue of checks never holds the
    threads that other requests need."""
    await _server_checks.run(user, check_reward_source, source)
