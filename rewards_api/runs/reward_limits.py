"""Run-time limits for processes that run untrusted reward code: CPU time per call and per episode, memory.

The training worker, the evaluation child and the check child call :func:`install` first thing. It sets:

- an address-space limit (``RLIMIT_AS``): what the process holds at that point plus ``memory_headroom``.
  A training worker holds 0.65 GB of address space once PyTorch and NumPy are loaded (it varies with
  their thread pools, hence relative) and peaks at 0.9 GB (0.42 GB resident) training 64 cars on three
  tracks, so the default :data:`MEMORY_HEADROOM` of 3 GiB (a limit of ~3.6 GiB) is >10x what it adds; a
  reward that allocates without end gets a ``MemoryError`` (reported as "used too much memory")
  instead of taking the machine down;
- a CPU-time watch on every group of reward calls (:class:`CpuLimits`, a :class:`~rewards_api.envs.reward.
  CallGuard`): a ``SIGPROF`` interval timer (``ITIMER_PROF``, process CPU time) is armed only while reward
  code runs, two system calls per batch of cars. Each tick looks at which call is running; one that has
  run for :data:`CALL_CPU_LIMIT` is interrupted with an exception the sandbox cannot catch, and the job
  fails naming the limit and the line. The mean cost of a call times a car's steps estimates what one
  episode's calls cost; past :data:`EPISODE_CPU_LIMIT` the job fails too;
- a kernel backstop (``RLIMIT_CPU``): signals are only handled between bytecodes, so a single long
  C-level operation (``sum(range(10**12))``) cannot be interrupted. A thread raises
  the soft limit to "used + :data:`CPU_BACKSTOP`" every half second; while the main thread holds the
  interpreter lock inside such an operation the thread cannot run, the limit is reached and the kernel
  ends the process with ``SIGXCPU``. The manager reports that with :func:`explain_exit`. A call that keeps
  running after its time-out (``finally`` tricks) gets the same end :data:`KILL_GRACE` seconds later.

Limits are per process; nothing here runs in the server itself. Callables passed from Python get no
guard (see :mod:`rewards_api.envs.reward`). A process that has not installed limits can still bound its
checks' calls with :func:`call_limits` (the CLI and library users checking a function in their own
process: per-call CPU time only, on the main thread).
"""

from __future__ import annotations

import contextlib
import linecache
import math
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..envs.reward import RewardFunctionError, get_call_guard, set_call_guard

try:
    import resource
except ImportError:  # pragma: no cover - not POSIX: install() refuses, call_limits() does nothing
    resource = None  # type: ignore[assignment]

__all__ = [
    "CALL_CPU_LIMIT",
    "CHECK_CPU_BUDGET",
    "CHECK_MEMORY_HEADROOM",
    "CPU_BACKSTOP",
    "EPISODE_CPU_LIMIT",
    "MEMORY_HEADROOM",
    "CpuLimits",
    "call_limits",
    "explain_exit",
    "install",
    "memory_limit",
]

CALL_CPU_LIMIT = 1.0
"""CPU seconds one reward call may take (a call normally takes a few microseconds)."""
EPISODE_CPU_LIMIT = 20.0
"""CPU seconds the reward calls of one car's episode may take together."""
MEMORY_HEADROOM = 3 << 30
"""Bytes of address space a worker may add to what it holds when limits are installed."""
CHECK_MEMORY_HEADROOM = 1 << 30
"""The same for the child that checks a function when it is written."""
CPU_BACKSTOP = 5.0
"""CPU seconds past the last refresh at which the kernel ends a worker stuck in one C operation."""
CHECK_CPU_BUDGET = 3.0
"""CPU seconds the check child may use in all once started (it makes 32 calls, normally in ~0.2 s)."""
KILL_GRACE = 2.0
"""CPU seconds a call may keep running after its time-out was raised, before the kernel ends the process."""
TICK = 0.1
"""CPU seconds between two looks at a running call."""

_REFRESH = 0.5  # wall seconds between two raises of the RLIMIT_CPU soft limit
_REWARD_FRAME = re.compile(rb'File "<reward_function-\d+>", line (\d+)')  # faulthandler's frame lines
_EPISODE_STEPS_BOUND = 100_000  # no episode is longer: below budget / bound a call is too cheap to matter
_SMOOTHING = 0.1  # weight of the newest batch in the mean cost of a call


class CallTimeout(BaseException):
    """Raised inside a runaway reward call. A ``BaseException`` that the sandbox offers no way to name,
    so reward code cannot catch it (its bare ``except:`` means ``except Exception:``)."""


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _CpuBackstop:
    """Keeps ``RLIMIT_CPU``'s soft limit a margin above the CPU time used (see the module docstring)."""

    def __init__(self, margin: float, refresh: bool) -> None:
        self.margin = margin
        self.hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        self._held = False
        self._lock = threading.Lock()
        self._set(margin)
        if refresh:
            threading.Thread(target=self._run, name="rewards-cpu-backstop", daemon=True).start()

    def _set(self, margin: float) -> None:
        soft = math.ceil(_cpu_used() + margin)
        if self.hard != resource.RLIM_INFINITY:
            soft = min(soft, self.hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, self.hard))

    def _run(self) -> None:
        while True:
            time.sleep(_REFRESH)
            with self._lock:
                if not self._held:
                    self._set(self.margin)

    def hold(self, grace: float) -> None:
        """Stop raising the limit and let the kernel end the process ``grace`` CPU seconds from now."""
        with self._lock:
            self._held = True
            self._set(grace)

    def release(self) -> None:
        with self._lock:
            self._held = False
            self._set(self.margin)


class CpuLimits:
    """The CPU-time guard of reward calls: per call (a ``SIGPROF`` timer) and per episode (mean cost).

    Its :meth:`on_tick` must be the process's ``SIGPROF`` handler (:func:`install` and :func:`call_limits`
    arrange that); ``enter``/``leave`` run on the main thread, around each group of calls.
    """

    def __init__(self, call_limit: float = CALL_CPU_LIMIT, episode_limit: float = EPISODE_CPU_LIMIT,
                 tick: float = TICK, backstop: _CpuBackstop | None = None) -> None:
        self.call_limit = call_limit
        self.episode_limit = episode_limit
        self.tick = tick
        self.backstop = backstop
        self.enabled = True
        self.mean_call = 0.0  # CPU seconds, smoothed over batches
        self.wants_steps = False  # calls cost enough for an episode's estimate to matter
        self._ticks_to_trip = round(call_limit / tick) + 1  # the first tick can come just after the start
        self._active = False
        self._filename: str | None = None
        self._ticks = 0
        self._call: Any = None  # the outermost frame of the call seen at the last tick
        self._call_ticks = 0
        self._tripped: tuple[str, int | None] | None = None

    # ----- around a group of calls ----------------------------------------------------------------------
    def enter(self, filename: str | None) -> None:
        if not self.enabled:
            return
        self._filename = filename
        self._ticks = 0
        self._active = True
        signal.setitimer(signal.ITIMER_PROF, self.tick, self.tick)

    def leave(self, calls: int, steps: int) -> None:
        """After ``calls`` calls of a group whose furthest car is ``steps`` steps into its episode (read
        by the caller before the calls: the reward may rewrite ``params["steps"]``)."""
        if not self.enabled:
            return
        self._active = False  # first: a tick still pending when the timer stops finds nothing to do
        remaining = signal.setitimer(signal.ITIMER_PROF, 0.0)[0]
        self._call = None
        spent = self._ticks * self.tick + max(self.tick - remaining, 0.0)
        if self._tripped is not None:
            (problem, line), self._tripped = self._tripped, None
            if self.backstop is not None:
                self.backstop.release()
            raise RewardFunctionError(problem, line, self._quote(line))
        if calls:
            self.mean_call += (spent / calls - self.mean_call) * _SMOOTHING
            # Below this a call is too cheap to matter: the callers then skip reading the steps.
            self.wants_steps = self.mean_call * _EPISODE_STEPS_BOUND > self.episode_limit
            if self.wants_steps and steps:
                self._check_episode(steps)

    def _check_episode(self, steps: int) -> None:
        estimate = steps * self.mean_call
        if estimate > self.episode_limit:
            raise RewardFunctionError(
                f"the reward calls of one episode took about {estimate:.0f} s of CPU time ({steps} steps at "
                f"about {self.mean_call * 1000:.0f} ms each), more than the {self.episode_limit:g} s an "
                "episode may use: make reward_function faster, it is called for every car at every step"
            )

    def _quote(self, line: int | None) -> str | None:
        if self._filename is None or line is None:
            return None
        return linecache.getline(self._filename, line).strip() or None

    # ----- the SIGPROF handler --------------------------------------------------------------------------
    def on_tick(self, signum: int, frame: Any) -> None:
        """Every ``tick`` of CPU time while reward code runs: stop a call that has run too long."""
        if not self._active:
            return
        self._ticks += 1
        if self._tripped is not None:  # the call went on after its time-out: interrupt it again
            raise CallTimeout
        inner = outer = None
        while frame is not None:
            if frame.f_code.co_filename == self._filename:
                outer = frame
                inner = inner or frame
            frame = frame.f_back
        if outer is None:  # between calls
            self._call, self._call_ticks = None, 0
            return
        if outer is not self._call:
            self._call, self._call_ticks = outer, 0
        self._call_ticks += 1
        if self._call_ticks >= self._ticks_to_trip:
            self._tripped = (
                f"a call ran for more than {self.call_limit:g} s of CPU time without returning (the limit "
                f"per call): is there an endless loop? A reward must be quick to compute",
                inner.f_lineno if inner is not None else None,
            )
            if self.backstop is not None:
                self.backstop.hold(KILL_GRACE)
            raise CallTimeout


def install(memory_headroom: int | None = MEMORY_HEADROOM, cpu_backstop: float = CPU_BACKSTOP,
            refresh: bool = True) -> CpuLimits:
    """Limit this process for running untrusted reward code (see the module docstring); main thread only.

    ``memory_headroom``: bytes of address space on top of the current size (None: no memory limit).
    ``cpu_backstop``: CPU seconds the kernel allows past "now" (``refresh``: past the last refresh, every
    half second; without it the check child gets one fixed budget). Returns the guard, also installed as
    the one reward functions compiled from source from now on run under.
    """
    if resource is None or not hasattr(signal, "setitimer"):  # pragma: no cover
        raise RuntimeError("limits on reward code need a POSIX system (Linux or macOS)")
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if memory_headroom is not None:
        _limit_address_space(memory_headroom)
    guard = CpuLimits(backstop=_CpuBackstop(cpu_backstop, refresh))
    signal.signal(signal.SIGPROF, guard.on_tick)
    set_call_guard(guard)
    return guard


def _address_space() -> int:
    """This process's virtual memory size in bytes."""
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _limit_address_space(headroom: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    try:
        limit = _address_space() + headroom
    except OSError:  # no /proc: fall back to a fixed limit
        limit = 4 * headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def memory_limit() -> int | None:
    """The address-space limit in bytes, or None."""
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY else soft


@contextlib.contextmanager
def call_limits() -> Iterator[None]:
    """Run the block with reward functions compiled in it under a CPU limit per call.

    The process's guard when :func:`install` was called; else, on the main thread, a temporary one (per
    call only: no memory limit and no kernel backstop, so a single huge C operation still runs to its
    end); elsewhere, none.
    """
    if (get_call_guard() is not None or threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")):
        yield
        return
    guard = CpuLimits()
    previous = signal.signal(signal.SIGPROF, guard.on_tick)
    set_call_guard(guard)
    try:
        yield
    finally:
        set_call_guard(None)
        guard.enabled = False  # a function compiled in the block and kept would arm a timer nobody handles
        signal.setitimer(signal.ITIMER_PROF, 0.0)
        signal.signal(signal.SIGPROF, previous)


def explain_exit(code: int | None, message: str, crash_report: bytes = b"") -> str:
    """``message`` about a process that ended with exit code ``code``, followed by the likely cause in
    words when a limit of this module (or the system, for memory) ended it, or when it crashed.

    ``crash_report``: what the process wrote last (``faulthandler``'s report of a crash names the line of
    the reward function that was running)."""
    if code in (-signal.SIGSEGV, -signal.SIGBUS):
        found = _REWARD_FRAME.search(crash_report)
        where = f" (line {int(found[1])} of the reward function)" if found else ""
        return (f"{message}: the process crashed{where}. This is what happens when a reward function nests "
                "things too deeply: a tuple or list inside another a million times, or a long chain of "
                "filter(), map(), zip() or generators each reading the one before; Python runs out of stack "
                "following them. Keep data structures flat and iterate over lists instead")
    if code == -signal.SIGXCPU:
        return (f"{message}: the reward function used more CPU time than allowed and could not be "
                "interrupted (one long operation such as sum(range(10**12)), or a call that went on after "
                "its time-out), so its process was ended; make reward_function quick to compute")
    if code == -signal.SIGKILL:
        return f"{message}: it was killed, by the system when memory runs out or by hand"
    return message
