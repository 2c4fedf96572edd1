"""The reward checks' fork server: ``python -m rewards_api.server.reward_check_server FD``.

Started once by :mod:`rewards_api.server.reward_check`. It imports the sandbox and computes the sample cars
of every built-in track, then waits on ``FD``, a Unix ``SOCK_SEQPACKET`` socket to the server. Each message
there is a check: a JSON header ``{"timeout": seconds}`` with one file descriptor attached, a stream
socket whose other end the server holds. For each, the fork server forks a child that reads the source
from that socket, checks it and writes one line of JSON back: ``{"ok": true}`` or ``{"ok": false,
"message": ..., "line": ...}``. A fork of this small, already loaded process takes a few milliseconds.

The fork server keeps its copy of each check's socket until the child ends, so that it can say how a child
that died without answering ended (``{"ok": false, "exit": code}``, the code as :mod:`multiprocessing`
gives it: negative for a signal), and it kills a child still running past its time-out. It exits when the
server closes its end. Why not :mod:`multiprocessing`'s fork server: it re-runs the server's main script
in every child (``rewards-api`` imports the whole CLI), 0.2 s of CPU per check.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass

from ..envs import samples
from ..envs.reward import RewardFunctionError, compile_reward_source
from ..runs.reward_limits import CHECK_CPU_BUDGET, CHECK_MEMORY_HEADROOM, EPISODE_CPU_LIMIT, install

CHECK_NICENESS = 5
"""How much lower a check's CPU priority is than the server's."""
MAX_SOURCE_BYTES = 4 << 20
"""A longer source is refused unread (the server's request bodies are bounded far below this)."""
KILL_GRACE = 1.0
"""Seconds past a check's time-out before its child is killed."""


@dataclass
class _Check:
    connection: socket.socket
    deadline: float


def check_in_child(connection: socket.socket) -> None:
    """In the forked child: read the source, lower the priority, install limits, check, answer."""
    chunks: list[bytes] = []
    received = 0
    while chunk := connection.recv(1 << 16):
        received += len(chunk)
        if received > MAX_SOURCE_BYTES:
            _answer(connection, {"ok": False, "message": "it is too long to check"})
            return
        chunks.append(chunk)
    source = b"".join(chunks).decode("utf-8", errors="replace")
    os.nice(CHECK_NICENESS)
    faulthandler.enable()  # a crash is reported on stderr, which the server reads bounded and escaped
    install(memory_headroom=CHECK_MEMORY_HEADROOM, cpu_backstop=CHECK_CPU_BUDGET, refresh=False)
    try:
        samples.call_on_samples(compile_reward_source(source), EPISODE_CPU_LIMIT)
    except RewardFunctionError as exc:
        _answer(connection, {"ok": False, "message": exc.detail, "line": exc.line})
    else:
        _answer(connection, {"ok": True})


def _answer(connection: socket.socket, answer: dict[str, object]) -> None:
    connection.sendall(json.dumps(answer).encode() + b"\n")


def _fork_check(connection: socket.socket, control: socket.socket, others: list[socket.socket]) -> int:
    """Fork a child that checks the source sent on ``connection``; the child's pid. The child closes its
    copies of ``control`` and of the ``others`` checks' sockets, so that their ends are not held open."""
    pid = os.fork()
    if pid == 0:  # the child: it never returns into the loop
        code = 0
        try:
            control.close()
            for other in others:
                other.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            check_in_child(connection)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


def serve(control: socket.socket) -> None:
    """Fork a check for every request on ``control`` until the server closes it."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # only to wake the selector
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    checks: dict[int, _Check] = {}
    while True:
        now = time.monotonic()
        wait = min((check.deadline for check in checks.values()), default=now + 60.0) - now
        for key, _ in selector.select(max(wait, 0.0)):
            if key.fileobj is control:
                message, fds, _, _ = socket.recv_fds(control, 1024, 1)
                if not message:  # the server is gone
                    return
                if not fds:
                    continue
                connection = socket.socket(fileno=fds[0])
                timeout = float(json.loads(message).get("timeout", 10.0))
                others = [check.connection for check in checks.values()]
                checks[_fork_check(connection, control, others)] = _Check(
                    connection, time.monotonic() + timeout + KILL_GRACE)
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
        for pid, check in checks.items():
            if check.deadline <= time.monotonic():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _reap(checks)


def _reap(checks: dict[int, _Check]) -> None:
    """Collect every ended child; tell the server how one ended if it did not answer."""
    while checks:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        check = checks.pop(pid, None)
        if check is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        if code != 0:  # a child that answered exits with 0; the server reads only the first line
            with contextlib.suppress(OSError):
                check.connection.setblocking(False)
                _answer(check.connection, {"ok": False, "exit": code})
        check.connection.close()


def main() -> None:
    # Ctrl+C on the server reaches its whole process group: this process ends when the server does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    samples.check_samples()  # computed once here: every check forked from here inherits them
    control = socket.socket(fileno=int(sys.argv[1]))
    serve(control)


if __name__ == "__main__":
    main()
