"""Where training workers and evaluation children come from: a fork server with everything preloaded.

A process started with ``spawn`` is a new interpreter: it imports PyTorch (1.2-1.6 s on this machine's
cores), then ``torch._dynamo``, which the first optimizer pulls in (another 1.9 s), before it takes a step.
Here they come from :mod:`multiprocessing`'s ``forkserver`` instead: one small process, started by the
server on its own (:func:`start`), that imports all of that once (:mod:`rewards_api.runs.preload`) and
forks a child for each worker. A fork of a loaded process takes milliseconds.

What stays as it was with ``spawn``:

- user code never runs in the server: the server is not forked, the fork server is (its memory holds no
  token and no user's data: only modules and built-in tracks);
- no fork of a process that holds threads or a thread pool: the fork server runs one thread (it limits
  OpenBLAS and OpenMP to the calling thread before NumPy or PyTorch load, and runs no tensor operation:
  see :mod:`rewards_api.runs.preload`);
- children run niced: each lowers its own priority first thing (:func:`lower_priority`), before any
  user code, to the niceness its parent computed;
- a worker that dies is noticed: the fork server reaps it and sends its exit code to the process that
  asked for it, through the pipe that is that child's ``sentinel``; ``kill()``, ``join()`` and
  ``exitcode`` work as for any :mod:`multiprocessing` process;
- each child gets its arguments pickled by the server (trusted to untrusted, as before) and reports back
  over pipes of its own.

If the fork server is killed, :mod:`multiprocessing` starts a new one for the next process; the children it
had go on (their exit codes then read 255). It ends when the server does.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

log = logging.getLogger(__name__)

PRELOAD = ["rewards_api.runs.preload"]
"""What the fork server imports before it forks anyone."""

_lock = threading.Lock()
_configured = False


def context() -> BaseContext:
    """The ``forkserver`` context that training workers and evaluation children are started from."""
    global _configured
    with _lock:
        if not _configured:
            forkserver.set_forkserver_preload(PRELOAD)
            _configured = True
    return multiprocessing.get_context("forkserver")


def start() -> None:
    """Start the fork server now if it is not running (its imports take a few seconds: better while the
    server starts than at the first Train). Returns at once; the start runs in a thread of its own."""
    context()

    def run() -> None:
        try:
            forkserver.ensure_running()
        except Exception:  # the first worker will try again, and say why if it cannot
            log.exception("could not start the training fork server")

    threading.Thread(target=run, name="rewards-fork-server-start", daemon=True).start()


def child_niceness(increment: int) -> int:
    """The niceness a child should run at: ``increment`` below this process's priority (at most 19)."""
    return min(os.getpriority(os.PRIO_PROCESS, 0) + increment, 19)


def lower_priority(niceness: int) -> None:
    """In a child, first thing: run at ``niceness`` (from :func:`child_niceness` in its parent) before any
    user code. The fork server itself keeps the server's priority: it reaps the children and reports their
    exits, which a stop waits for."""
    with contextlib.suppress(OSError):
        if os.getpriority(os.PRIO_PROCESS, 0) < niceness:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)


def fork_server_pid() -> int | None:
    """The fork server's process id while it runs (None before it starts)."""
    return forkserver._forkserver._forkserver_pid  # no public accessor; used for tests and benchmarks
