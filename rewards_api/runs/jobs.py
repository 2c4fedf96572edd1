"""Trainings in worker processes, for the HTTP server: a job per session, a queue, live events and weights.

The server must never run user reward code in its own process, never block its event loop, and survive a
worker that fails. :class:`JobManager` gives it that:

- every training runs in its own process, forked from a fork server that has PyTorch and the trainer loaded
  already (:mod:`rewards_api.runs.processes`: the server itself, which holds threads, is never forked);
  at most ``max_jobs`` run at once, the others wait in FIFO order;
- one relay thread in the manager launches workers, reads what they send, updates the :class:`JobStatus`
  of each session, fans events out to :class:`Subscription` queues, and notices a worker that dies without
  reporting (killed, segfault) by watching its process sentinel;
- the public methods only take a lock for a moment and never wait for a worker: :meth:`JobManager.stop`
  signals and returns, the state changes when the worker reports.

Each worker talks to the manager over two one-way pipes of its own (not a queue shared by all workers, and
not a ``multiprocessing.Event``): a worker killed in the middle of a write can then only break its own pipe,
never leave a shared lock held (a ``multiprocessing.Queue``'s write lock, or the lock inside a
``multiprocessing.Event``) that would hang the other workers or the manager. The control pipe also tells
a worker that its manager is gone (end of file): it then stops and saves, so no training is orphaned.

Messages from a worker are JSON (events, states) or raw ``torch.save`` bytes (weights, loaded with
``weights_only=True``): the manager never unpickles what a process running user code sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..safe_json import clean
from ..store import SessionBusy, SessionNotFound, SessionStore, user_home
from . import processes
from .child_output import OutputRelay, redirect_output
from .events import Event, FrameReady, TrainingStarted

if TYPE_CHECKING:  # the server loads PyTorch only once it needs it (the first weights from a worker)
    import torch

    from .train import Trainer, TrainingOptions

log = logging.getLogger(__name__)

__all__ = [
    "JobManager", "JobState", "JobStatus", "QueueFull", "StillRunning", "Subscription", "UserLimitReached",
]

WEIGHTS_INTERVAL = 0.5
"""Seconds of training between two copies of the Q-network sent by a worker (one is sent at start)."""
SUBSCRIPTION_SIZE = 256
"""Default bound of a subscriber's queue; when it is full the oldest item is dropped."""
RELAY_TICK = 0.1
"""Longest time the relay thread blocks before looking again (it is woken at once by start/stop)."""
WORKER_NICENESS = 10
"""How much lower a worker's CPU priority is than the server's, so that a busy machine answers at once."""
EXIT_GRACE = 5.0
"""Seconds a worker may take to exit after it reported its end, before it is killed."""
RETIRE_TIMEOUT = 10.0
"""Seconds a session's training may take to save and exit when the session is deleted, before it is killed."""
KILL_WAIT = 5.0
"""Seconds to wait for a killed worker to be reaped."""
STOP_GRACE = 0.8
"""Seconds a worker told to stop may take to leave the reward code (it then says it is saving), before it is
killed (its reward code may be in a long call, or in one C operation; the last saved state stays), so that
a stop ends a job within 2 s whatever its reward code does (killing, reaping and reporting take the rest,
more on a busy machine)."""
SAVE_GRACE = 30.0
"""Seconds a worker told to stop may take to finish starting, or for its final save (trusted code: the
reward is called only between the two), before it is killed."""

JobKey = tuple[str | None, str]
"""A job's identity: (user, session id); the user is ``None`` for the local owner."""
MAX_QUEUED = 64
"""Default bound of the jobs waiting for a free slot; more are refused with :class:`QueueFull`."""

_JSON = b"J"
_WEIGHTS = b"W"


class QueueFull(RuntimeError):
    """Too many trainings are waiting already: try again when one has ended."""


class UserLimitReached(RuntimeError):
    """The user already has as many trainings queued or running as allowed: stop one first."""


class StillRunning(RuntimeError):
    """A session's training process did not end, even killed: its folder must not be deleted yet."""


class JobState(str, Enum):
    """Where a session's job is; ``finished``, ``failed`` and ``stopped`` are final."""

    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"
    stopped = "stopped"

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self in (JobState.queued, JobState.running)


@dataclass
class JobStatus:
    """A snapshot of one session's job (the manager hands out copies; changing one changes nothing).

    ``pid`` is the worker's process id while it runs; ``layers`` the driving network's ``[(in, out), ...]``
    (DQN's Q-network or PPO's actor) once the worker has started (what :meth:`JobManager.latest_weights`
    loads into, with ``rewards_api.agents.dqn.QNetwork(layers)``, given the continuous car's action
    bounds). ``user`` names whose session it is (see :func:`rewards_api.store.user_home`); the same
    session id may be trained by several users at once.
    """

    session_id: str
    state: JobState
    episode: int = 0  # episodes done (over all runs of the session's model)
    episodes: int = 0  # the target; 0 until the worker has started
    record: float | None = None
    last_score: float | None = None
    epsilon: float | None = None
    steps: int = 0
    error: str | None = None
    queued_at: float | None = None  # epoch seconds
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    layers: list[tuple[int, int]] | None = None
    user: str | None = None  # whose session: None for the local owner

    @property
    def key(self) -> JobKey:
        return (self.user, self.session_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``state`` as its string value, ``layers`` as lists)."""
        data = asdict(self)
        data["state"] = self.state.value
        data["layers"] = [list(layer) for layer in self.layers] if self.layers is not None else None
        return data

    @property
    def active(self) -> bool:
        return self.state.active


# ----- subscriptions -------------------------------------------------------------------------------------


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Subscription:
    """A bounded queue of one session's event dicts for one consumer (from :meth:`JobManager.subscribe`).

    Items are ``event.to_dict()`` of every EpisodeFinished / TrainingFinished / TrainingFailed, and a
    ``{"kind": "state", **JobStatus.to_dict()}`` on each state change (and one at subscribe time when the
    session has a job). When the queue is full the oldest item is dropped (counted in :attr:`dropped`), so
    a slow consumer never holds up the relay or the other consumers.

    Threads use :meth:`get`; asyncio code uses ``await next()`` or ``async for item in subscription``.
    The relay thread hands items to asyncio safely: a waiting :meth:`next` registers a future of its own
    running loop, and the relay completes it with ``loop.call_soon_threadsafe`` (no thread is parked per
    waiting consumer, and nothing needs to be captured at subscribe time).

    The subscription lives until :meth:`close` (or the manager's shutdown): it spans the session's jobs,
    so a viewer also sees a job started again later. It is a context manager (sync and async).
    """

    def __init__(self, session_id: str, maxsize: int = SUBSCRIPTION_SIZE, manager: JobManager | None = None,
                 user: str | None = None):
        if maxsize < 1:
            raise ValueError("a subscription holds at least one item")
        self.session_id = session_id
        self.key: JobKey = (user, session_id)
        self.maxsize = maxsize
        self.dropped = 0
        self._items: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._manager = manager

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: dict[str, Any]) -> None:
        """Add an item (the relay does this); never blocks: a full queue drops its oldest item."""
        with self._cond:
            if self._closed:
                return
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        self._wake_waiters(waiters)

    @staticmethod
    def _wake_waiters(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_wake, future)

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next item, waiting up to ``timeout`` seconds (None: until one comes or the subscription
        closes); None on timeout or once closed and empty. For threads: do not call it on an event loop."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            return self._items.popleft() if self._items else None

    async def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next item, awaiting up to ``timeout`` seconds without blocking the event loop; None on
        timeout or once closed and empty."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._cond:
                if self._items:
                    return self._items.popleft()
                if self._closed:
                    return None
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            remaining = None if deadline is None else deadline - loop.time()
            try:
                if remaining is not None and remaining <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(future, remaining)
            except asyncio.TimeoutError:
                with self._cond:
                    return self._items.popleft() if self._items else None
            finally:
                with self._cond, contextlib.suppress(ValueError):
                    self._waiters.remove((loop, future))

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        item = await self.next()
        if item is None:
            raise StopAsyncIteration
        return item

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> dict[str, Any]:
        item = self.get()
        if item is None:
            raise StopIteration
        return item

    def close(self) -> None:
        """Unsubscribe; waiting readers get what is left, then None. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        self._wake_waiters(waiters)
        if self._manager is not None:
            self._manager._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


# ----- the worker process ----------------------------------------------------------------------------------


class _Channel:
    """The worker's end of its result pipe: frames tagged JSON or weights; remembers a broken pipe."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.broken = False
        self._lock = threading.Lock()

    def send(self, tag: bytes, payload: bytes) -> bool:
        if self.broken:
            return False
        try:
            with self._lock:
                self.connection.send_bytes(tag + payload)
        except OSError:  # the manager is gone
            self.broken = True
            return False
        return True

    def send_json(self, message: dict[str, Any]) -> bool:
        return self.send(_JSON, json.dumps(message).encode())


def _state_dict_bytes(state: dict[str, torch.Tensor]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in state.items()}, buffer)
    return buffer.getvalue()


def _worker_main(home: str, session_id: str, options: TrainingOptions | None, fresh: bool, niceness: int,
                 results: Connection, control: Connection, output: Connection) -> None:
    """Run one session's training in this process (a new fork of the fork server); report to the manager.

    Its stdout and stderr go to ``output``, which the manager reads (:mod:`rewards_api.runs.child_output`:
    bounded and escaped, never the server's stream raw).

    A ``stop`` on ``control`` (or its end of file: the manager is gone) makes a watcher thread call
    ``trainer.stop()``; the run then saves what it learned and ends as ``stopped``. The process runs the
    user's reward code, so it limits itself first (memory, CPU per call and per episode: see
    :mod:`rewards_api.runs.reward_limits`); a limit passed fails the job with a message naming it.
    """
    processes.lower_priority(niceness)  # training is batch work: the server's answers come first

    import faulthandler

    import torch

    from .reward_limits import install
    from .train import Trainer, TrainingError, TrainingOptions

    redirect_output(output)
    faulthandler.enable()  # a crash (deep nesting in the reward: see explain_exit) names the user's line
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal: the manager stops us
    install()
    options = replace(options or TrainingOptions(), fresh=fresh)
    torch.set_num_threads(options.torch_threads)
    channel = _Channel(results)
    stopping = threading.Event()
    trainers: list[Trainer] = []

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            control.recv_bytes()
        stopping.set()
        for trainer in trainers:
            trainer.stop()

    threading.Thread(target=watch, name="rewards-stop-watch", daemon=True).start()

    weights_sent = 0.0

    def send_weights(trainer: Trainer) -> bool:
        nonlocal weights_sent
        weights_sent = time.monotonic()
        return channel.send(_WEIGHTS, _state_dict_bytes(trainer.policy.state_dict()))

    def on_event(event: Event) -> None:
        if isinstance(event, FrameReady):
            return
        sent = channel.send_json(event.to_dict())
        # The manager keeps the newest weights for live views: at the start, then every half second.
        due = isinstance(event, TrainingStarted) or time.monotonic() - weights_sent >= WEIGHTS_INTERVAL
        if sent and due:
            sent = send_weights(trainers[0])
        if not sent or stopping.is_set():
            for trainer in trainers:
                trainer.stop()

    store = SessionStore(home)
    try:
        # Marked busy for other processes (rewards-api train or set of the same session are refused).
        with store.training_mark(session_id, "training it (the server)"):
            trainer = Trainer(store, session_id, options)
            trainers.append(trainer)
            if stopping.is_set():
                trainer.stop()
            result = trainer.run(on_event, on_saving=lambda: channel.send_json({"kind": "saving"}))
        state = JobState.stopped if result.stopped else JobState.finished
        channel.send_json({"kind": "end", "state": state.value, "error": None})
    except SessionBusy as exc:  # rewards-api train runs it, or set changes it
        channel.send_json({"kind": "end", "state": JobState.failed.value, "error": str(exc),
                           "reported": False})
    except TrainingError as exc:
        channel.send_json({"kind": "end", "state": JobState.failed.value, "error": str(exc),
                           "reported": True})
    except MemoryError:
        channel.send_json({"kind": "end", "state": JobState.failed.value, "reported": False,
                           "error": "the training used too much memory (MemoryError) and was stopped"})
    except Exception as exc:
        log.exception("training of session %s failed", session_id)
        channel.send_json({"kind": "end", "state": JobState.failed.value,
                           "error": f"{type(exc).__name__}: {exc}", "reported": False})
    finally:
        results.close()


# ----- the manager ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    status: JobStatus
    fresh: bool = False  # the worker starts a new model (TrainingOptions.fresh)
    process: BaseProcess | None = None
    results: Connection | None = None
    control: Connection | None = None
    launching: bool = False
    stop_requested: bool = False
    stop_sent: float | None = None  # monotonic time the worker was told to stop
    looping: float | None = None  # monotonic time the worker said it started training (calling the reward)
    saving: float | None = None  # monotonic time the worker said it left the reward code for its final save
    killed: str | None = None  # when it was killed after it did not stop in time: "at shutdown", ...
    ended: float | None = None  # monotonic time the worker reported its end
    exit_killed: bool = False  # it then did not exit within EXIT_GRACE
    weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    output: OutputRelay | None = field(default=None, repr=False)  # what the worker writes

    @property
    def has_worker(self) -> bool:
        """A worker is being launched, or its process has not been reaped yet."""
        return self.launching or self.process is not None

    @property
    def holds_slot(self) -> bool:
        """Counts against max_jobs: a worker that reported its end only has its interpreter to tear down
        (about a second with PyTorch), so the next job need not wait for that."""
        return self.launching or (self.process is not None and self.ended is None)


class JobManager:
    """Runs sessions' trainings in worker processes; see the module docstring.

    Thread-safe; every method returns quickly (none waits for a worker except :meth:`shutdown` and
    :meth:`retired`, which the server calls from its thread pool), so the server may call them from its
    event loop. Use :meth:`shutdown` (or ``with JobManager(...)``) to end.
    """

    def __init__(self, home: Path | str, max_jobs: int | None = None,
                 options: TrainingOptions | None = None, max_queued: int = MAX_QUEUED,
                 preload: bool = True) -> None:
        """``max_jobs`` defaults to ``os.cpu_count()``; ``options`` is given to every Trainer (with
        ``fresh`` set per job by :meth:`start`); at most ``max_queued`` jobs wait for a slot. ``preload``:
        start the workers' fork server now (in the background), not at the first start."""
        self.store = SessionStore(home)
        self.home = self.store.home
        self.max_jobs = max_jobs if max_jobs is not None else (os.cpu_count() or 1)
        if self.max_jobs < 1:
            raise ValueError(f"max_jobs must be at least 1, not {self.max_jobs}")
        self.max_queued = max_queued
        self.options = options
        self._context = processes.context()
        self._lock = threading.Lock()
        self._stores: dict[str | None, SessionStore] = {None: self.store}
        self._jobs: dict[JobKey, _Job] = {}
        self._pending: deque[_Job] = deque()
        self._retiring: dict[JobKey, int] = {}  # sessions being deleted (by how many requests): no starts
        self._subscribers: dict[JobKey, set[Subscription]] = {}
        self._closing = False
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._relay = threading.Thread(target=self._relay_loop, name="rewards-job-relay", daemon=True)
        self._relay.start()
        if preload:
            processes.start()  # the workers' fork server loads PyTorch now, not at the first start

    def __enter__(self) -> JobManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # ----- public API ------------------------------------------------------------------------------------
    def store_of(self, user: str | None) -> SessionStore:
        """The store of ``user``'s sessions (the owner's for ``None``)."""
        with self._lock:
            store = self._stores.get(user)
            if store is None:
                store = self._stores[user] = SessionStore(user_home(self.home, user))
            return store

    def start(self, session_id: str, user: str | None = None, user_limit: int | None = None,
              fresh: bool = False) -> JobStatus:
        """Start (queue) the session's training, or return its job if it is already queued or running.

        The run continues the session's model (a warm start, or the rest of an interrupted run: see
        :mod:`rewards_api.runs.train`); ``fresh=True`` starts a new one instead. ``fresh`` is ignored when
        the session's job is already queued or running: that job is returned as it is.

        SessionNotFound if there is no such session (InvalidSessionId for a bad id); QueueFull when
        ``max_queued`` jobs are waiting; UserLimitReached when ``user`` already has ``user_limit`` jobs
        queued or running (checked under the same lock as the start, so two requests at once cannot both
        pass); RuntimeError after :meth:`shutdown`. The worker is launched by the relay thread as soon as a
        slot is free.
        """
        if not self.store_of(user).exists(session_id):
            raise SessionNotFound(session_id)
        with self._lock:
            if self._closing:
                raise RuntimeError("the job manager is shut down")
            if (user, session_id) in self._retiring:
                raise SessionNotFound(session_id, f"session {session_id!r} is being deleted: create it again "
                                      "once it is gone, or use another session")
            job = self._jobs.get((user, session_id))
            if job is not None and job.status.active:
                return replace(job.status)
            if user_limit is not None:
                mine = [other.status.session_id for other in self._jobs.values()
                        if other.status.user == user and other.status.active]
                if len(mine) >= user_limit:
                    raise UserLimitReached(
                        f"you already have {len(mine)} trainings queued or running ({', '.join(mine)}); the "
                        f"limit is {user_limit}: stop one first (GET /api/v1/stop?session_id=...)")
            if len(self._pending) >= self.max_queued:
                raise QueueFull(f"{len(self._pending)} trainings are already waiting for a free slot: "
                                "try again when one has ended")
            job = _Job(JobStatus(session_id=session_id, state=JobState.queued, queued_at=time.time(),
                                 user=user), fresh=fresh)
            self._jobs[job.status.key] = job
            self._pending.append(job)
            self._publish_state(job)
            snapshot = replace(job.status)
        self._wakeup()
        return snapshot

    def stop(self, session_id: str, user: str | None = None) -> JobStatus | None:
        """Stop the session's job without waiting: a queued job is dropped and marked ``stopped`` at once;
        a running one is told to stop (it saves what it learned, then becomes ``stopped`` when the worker
        reports). Returns the status as it is now, or None if the session never had a job."""
        with self._lock:
            job = self._jobs.get((user, session_id))
            if job is None:
                return None
            self._stop_job(job)
            return replace(job.status)

    @contextlib.contextmanager
    def retired(self, session_id: str, user: str | None = None,
                timeout: float = RETIRE_TIMEOUT) -> Iterator[JobStatus | None]:
        """Hold the session free of training while its folder is deleted (``with jobs.retired(...):``).

        Its job is stopped (a queued one is dropped), and its worker is waited for up to ``timeout``
        seconds to save and exit, then killed; the body runs only once no process of the session's can
        write into its folder. Meanwhile :meth:`start` refuses the session (SessionNotFound). Yields the
        job's final status (None: it never had one); when the body ends without an error the job is
        forgotten, so a new session of the same id starts with no history. StillRunning if the worker
        does not end even killed (the body is not run). Other sessions' jobs are not touched.
        """
        key: JobKey = (user, session_id)
        with self._lock:
            self._retiring[key] = self._retiring.get(key, 0) + 1
        try:
            status = self._stop_and_wait(key, timeout)
            yield status
            with self._lock:
                job = self._jobs.get(key)
                if job is not None and not job.status.active and not job.has_worker:
                    del self._jobs[key]
        finally:
            with self._lock:
                self._retiring[key] -= 1
                if not self._retiring[key]:
                    del self._retiring[key]

    def _stop_and_wait(self, key: JobKey, timeout: float) -> JobStatus | None:
        """Stop the job of ``key`` and wait until its worker is reaped: killed after ``timeout`` seconds."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                return None
            self._stop_job(job)
        self._wakeup()
        if not self._wait_for_worker(job, time.monotonic() + timeout):
            with self._lock:
                if job.process is not None:
                    log.warning("session %s: the training did not stop in %g s; killing it", key[1], timeout)
                    job.killed = "when its session was deleted"
                    with contextlib.suppress(OSError):
                        job.process.kill()
            self._wakeup()
            if not self._wait_for_worker(job, time.monotonic() + KILL_WAIT):
                raise StillRunning(f"the training of session {key[1]!r} did not end, even killed: try again "
                                   "in a moment")
        with self._lock:
            return replace(job.status)

    def status(self, session_id: str, user: str | None = None) -> JobStatus | None:
        """The session's latest job, or None."""
        with self._lock:
            job = self._jobs.get((user, session_id))
            return replace(job.status) if job is not None else None

    def jobs(self) -> list[JobStatus]:
        """Every session's latest job, in the order they were started."""
        with self._lock:
            return [replace(job.status) for job in self._jobs.values()]

    def is_active(self, session_id: str, user: str | None = None) -> bool:
        """Whether the session's job is queued or running."""
        with self._lock:
            job = self._jobs.get((user, session_id))
            return job is not None and job.status.active

    def latest_weights(self, session_id: str, user: str | None = None) -> dict[str, torch.Tensor] | None:
        """The newest driving network's ``state_dict`` (CPU tensors: DQN's Q-network or PPO's actor) of the
        session's latest job, or None before its worker sent one. Load it into
        ``QNetwork(status(session_id).layers)``. Dropped when the job ends
        (nothing draws with them then; the saved model is on disk). Do not modify the tensors: copy them."""
        with self._lock:
            job = self._jobs.get((user, session_id))
            return job.weights if job is not None else None

    def subscribe(self, session_id: str, maxsize: int = SUBSCRIPTION_SIZE,
                  user: str | None = None) -> Subscription:
        """A queue of the session's events for one consumer (see :class:`Subscription`); it starts with
        the current state when the session has a job. Close it when done."""
        subscription = Subscription(session_id, maxsize, self, user)
        with self._lock:
            if self._closing:
                subscription._manager = None
                subscription.close()
                return subscription
            self._subscribers.setdefault(subscription.key, set()).add(subscription)
            job = self._jobs.get((user, session_id))
            if job is not None:
                subscription.put({"kind": "state", **job.status.to_dict()})
        return subscription

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job, wait up to ``timeout`` seconds for the workers to save and exit (then kill
        them), stop the relay thread and close the subscriptions. Safe to call twice."""
        with self._shutdown_lock:
            if self._shut_down:
                return
            with self._lock:
                self._closing = True
                for job in list(self._jobs.values()):
                    self._stop_job(job)
            self._wakeup()
            # The relay keeps reading the workers' pipes and reaps them as they exit.
            self._wait_for_workers(time.monotonic() + timeout)
            with self._lock:
                for job in self._jobs.values():
                    if job.process is not None:
                        log.warning("session %s: the training did not stop in %g s; killing it",
                                    job.status.session_id, timeout)
                        job.killed = "at shutdown"
                        job.process.kill()
            self._wait_for_workers(time.monotonic() + 5.0)
            self._wakeup()
            self._relay.join(timeout=5.0)
            if self._relay.is_alive():  # pragma: no cover - a bug in the relay
                log.error("the job relay thread did not end")
            with self._lock:
                subscriptions = [s for group in self._subscribers.values() for s in group]
                self._subscribers.clear()
            for subscription in subscriptions:
                subscription._manager = None
                subscription.close()
            self._wake_reader.close()
            self._wake_writer.close()
            self._shut_down = True

    # ----- for tests ---------------------------------------------------------------------------------------
    def _process(self, session_id: str, user: str | None = None) -> BaseProcess | None:
        with self._lock:
            job = self._jobs.get((user, session_id))
            return job.process if job is not None else None

    # ----- internals (the caller holds self._lock where noted) ---------------------------------------------
    def _wakeup(self) -> None:
        with contextlib.suppress(OSError):  # full (the relay is woken anyway) or closed
            self._wake_writer.send(b"x")

    def _wait_for_worker(self, job: _Job, deadline: float) -> bool:
        """Wait until the relay has reaped ``job``'s worker (True), or the deadline passes (False)."""
        while time.monotonic() < deadline:
            with self._lock:
                if not job.has_worker:
                    return True
            time.sleep(0.02)
        with self._lock:
            return not job.has_worker

    def _wait_for_workers(self, deadline: float) -> None:
        """Wait until the relay has reaped every worker (or the deadline passes)."""
        while time.monotonic() < deadline:
            with self._lock:
                if not any(job.has_worker for job in self._jobs.values()):
                    return
            time.sleep(0.02)

    def _stop_job(self, job: _Job) -> None:
        """Caller holds the lock."""
        status = job.status
        if status.state is JobState.queued and not job.launching:
            with contextlib.suppress(ValueError):
                self._pending.remove(job)
            status.state = JobState.stopped
            status.finished_at = time.time()
            self._publish_state(job)
        elif status.active and not job.stop_requested:
            job.stop_requested = True
            self._send_stop(job)

    @staticmethod
    def _send_stop(job: _Job) -> None:
        """Caller holds the lock."""
        if job.control is not None:
            if job.stop_sent is None:
                job.stop_sent = time.monotonic()
            with contextlib.suppress(OSError):  # the worker is gone: its sentinel will tell
                job.control.send_bytes(b"stop")

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            group = self._subscribers.get(subscription.key)
            if group is not None:
                group.discard(subscription)
                if not group:
                    del self._subscribers[subscription.key]

    def _publish(self, key: JobKey, item: dict[str, Any]) -> None:
        """Caller holds the lock (so each session's items keep their order); never blocks."""
        for subscription in self._subscribers.get(key, ()):
            subscription.put(dict(item))

    def _publish_state(self, job: _Job) -> None:
        self._publish(job.status.key, {"kind": "state", **job.status.to_dict()})

    # ----- the relay thread --------------------------------------------------------------------------------
    def _relay_loop(self) -> None:
        while True:
            try:
                if not self._relay_once():
                    return
            except Exception:  # pragma: no cover - keep relaying whatever went wrong
                log.exception("job relay error")
                time.sleep(RELAY_TICK)

    def _relay_once(self) -> bool:
        """One round: launch what fits, wait for input, handle it. False when the relay should end."""
        self._launch_pending()
        waitables: dict[Any, _Job] = {}
        with self._lock:
            for job in self._jobs.values():
                if job.results is not None:
                    waitables[job.results] = job
                if job.process is not None:
                    waitables[job.process.sentinel] = job
            if self._closing and not waitables and not any(job.launching for job in self._jobs.values()):
                return False
        ready = wait([*waitables, self._wake_reader], timeout=RELAY_TICK)
        for item in ready:
            if item is self._wake_reader:
                with contextlib.suppress(OSError):
                    while self._wake_reader.recv(4096):
                        pass
                continue
            job = waitables[item]
            if item is job.results:
                self._read(job)
            elif job.process is not None:
                self._reap(job)
        self._kill_stragglers()
        return True

    def _launch_pending(self) -> None:
        while True:
            with self._lock:
                if self._closing or not self._pending:
                    return
                if sum(job.holds_slot for job in self._jobs.values()) >= self.max_jobs:
                    return
                job = self._pending.popleft()
                job.launching = True
            self._launch(job)

    def _launch(self, job: _Job) -> None:
        session_id = job.status.session_id
        options = self.options  # None: the worker's defaults (the server need not load the trainer)
        niceness = processes.child_niceness(WORKER_NICENESS)
        results_reader = results_writer = control_reader = control_writer = None
        output_reader = output_writer = None
        try:
            results_reader, results_writer = self._context.Pipe(duplex=False)
            control_reader, control_writer = self._context.Pipe(duplex=False)
            output_reader, output_writer = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_worker_main, name=f"rewards-train-{session_id}", daemon=True,
                args=(str(self.store_of(job.status.user).home), session_id, options, job.fresh, niceness,
                      results_writer, control_reader, output_writer),
            )
            process.start()
        except Exception as exc:
            log.exception("could not start the training of session %s", session_id)
            for connection in (results_reader, results_writer, control_reader, control_writer, output_reader,
                               output_writer):
                if connection is not None:
                    connection.close()
            with self._lock:
                job.launching = False
                self._end(job, JobState.failed, f"could not start the training process: {exc}")
            return
        results_writer.close()  # the worker holds the other ends: its exit closes them
        control_reader.close()
        output_writer.close()
        output = OutputRelay.of(output_reader, f"training worker of session {session_id}")
        with self._lock:
            job.launching = False
            job.process, job.results, job.control = process, results_reader, control_writer
            job.output = output
            job.status.state = JobState.running
            job.status.started_at = time.time()
            job.status.pid = process.pid
            if job.stop_requested or self._closing:
                job.stop_requested = True
                self._send_stop(job)
            self._publish_state(job)

    def _read(self, job: _Job) -> None:
        """Handle everything the worker has sent so far; close its pipe at end of file."""
        connection = job.results
        if connection is None:
            return
        try:
            while connection.poll():
                self._handle(job, connection.recv_bytes())
        except (EOFError, OSError):
            connection.close()
            job.results = None

    def _handle(self, job: _Job, frame: bytes) -> None:
        tag, payload = frame[:1], frame[1:]
        if tag == _WEIGHTS:
            import torch  # loaded with the server, unless it was started with preload_workers off

            try:
                weights = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            except Exception:
                log.exception("session %s: unreadable weights from the worker", job.status.session_id)
                return
            with self._lock:
                if job.status.active:  # weights sent after its end are not needed
                    job.weights = weights
            return
        try:
            # What a worker sends holds the user's numbers and text: inf scores, lone surrogates in errors.
            message = clean(json.loads(payload))
            kind = message["kind"]
        except (ValueError, KeyError, TypeError):
            log.error("session %s: unreadable message from the worker", job.status.session_id)
            return
        status = job.status
        with self._lock:
            if kind == "started":
                job.looping = time.monotonic()
                status.episode, status.episodes = int(message["episode"]), int(message["episodes"])
                status.steps, status.record = int(message["steps"]), message["record"]
                status.layers = [(int(a), int(b)) for a, b in message["layers"]]
                self._publish_state(job)
            elif kind == "saving":
                job.saving = time.monotonic()
            elif kind == "end":
                if message.get("reported") is False:
                    self._publish(status.key, {"kind": "failed", "message": message["error"],
                                                      "episodes": status.episode, "steps": status.steps})
                job.ended = time.monotonic()
                self._end(job, JobState(message["state"]), message.get("error"))
            else:
                if kind == "episode":
                    status.episode, status.steps = message["episode"], message["steps"]
                    status.record, status.last_score = message["record"], message["score"]
                    status.epsilon = message["epsilon"]
                elif kind in ("finished", "failed"):
                    status.episode, status.steps = message["episodes"], message["steps"]
                    if kind == "finished" and message.get("record") is not None:
                        status.record = message["record"]
                self._publish(status.key, message)

    def _end(self, job: _Job, state: JobState, error: str | None) -> None:
        """Caller holds the lock: the job reaches a final state."""
        if not job.status.active:
            return
        job.status.state = state
        job.status.error = error
        job.status.finished_at = time.time()
        job.weights = None  # only live views of a running job draw with them (a big network: tens of MB)
        self._publish_state(job)

    def _reap(self, job: _Job) -> None:
        """The worker's process ended: take in what it sent last, then settle its state."""
        self._read(job)
        process = job.process
        assert process is not None
        process.join(timeout=1.0)
        code = process.exitcode
        crash_report = b""
        if job.output is not None and code is not None and code < 0 and not job.killed:
            # Its last words (faulthandler's report of a crash). Not for a worker killed here on purpose:
            # why it died is known, and on a busy machine the wait for them is most of a stop's 2 s.
            job.output.join(timeout=1.0)
            crash_report = job.output.tail
        job.output = None
        with self._lock:
            if job.results is not None:
                job.results.close()
                job.results = None
            if job.control is not None:
                job.control.close()
                job.control = None
            job.process = None
            job.status.pid = None
            if job.killed:
                self._end(job, JobState.stopped,
                          f"the training process did not stop in time {job.killed} and was killed")
            elif job.status.active:
                message = f"the training process exited unexpectedly (exit code {code}"
                if code is not None and code < 0:
                    with contextlib.suppress(ValueError):
                        message += f", signal {signal.Signals(-code).name}"
                message += ")"
                from .reward_limits import explain_exit  # a limit on the reward code: the likely cause

                message = explain_exit(code, message, crash_report)
                self._publish(job.status.key, {"kind": "failed", "message": message,
                                                      "episodes": job.status.episode,
                                                      "steps": job.status.steps})
                self._end(job, JobState.failed, message)
        with contextlib.suppress(ValueError):
            process.close()

    def _kill_stragglers(self) -> None:
        now = time.monotonic()
        with self._lock:
            for job in self._jobs.values():
                process = job.process
                if (job.stop_sent is not None and process is not None and job.ended is None
                        and not job.killed and not self._closing):  # shutdown: its own wait
                    if job.looping is not None and job.saving is None:  # it may be in the reward code
                        grace, since = STOP_GRACE, max(job.stop_sent, job.looping)
                    else:  # starting, or saving: trusted code
                        grace, since = SAVE_GRACE, job.saving or job.stop_sent
                    if now - since <= grace:
                        continue
                    log.warning("session %s: the training did not stop within %g s; killing it",
                                job.status.session_id, grace)
                    job.killed = f"({grace:g} s after it was asked to stop)"
                    with contextlib.suppress(OSError):
                        process.kill()
                    continue
                if (job.ended is not None and process is not None and not job.exit_killed
                        and now - job.ended > EXIT_GRACE):
                    log.warning("session %s: the training process did not exit; killing it",
                                job.status.session_id)
                    job.exit_killed = True
                    with contextlib.suppress(OSError):
                        process.kill()
