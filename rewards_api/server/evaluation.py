"""Evaluations for the server: computed at full speed in a child process (the reward function runs
there), then replayed to viewers from the recorded car poses, with no user code in the server.

Each evaluation in progress (its child process, then its replay) is an :class:`EvaluationRun` in the app's
:class:`EvaluationRuns`, so that deleting a session can end its evaluations before its folder goes.
"""

from __future__ import annotations

import contextlib
import json
import threading
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runs import processes
from ..runs.child_output import OutputRelay, redirect_output
from ..runs.reward_limits import explain_exit

if TYPE_CHECKING:  # runs.evaluate loads PyTorch
    from ..runs.evaluate import CarPose

EVALUATION_TIMEOUT = 120.0
"""Seconds an evaluation may take before its process is killed."""
KILL_WAIT = 5.0
"""Seconds to wait for a killed evaluation process to exit."""
EVALUATION_NICENESS = 10
"""How much lower an evaluation child's CPU priority is than the server's (as a training worker's)."""
EVALUATIONS_PER_USER = 2
EVALUATIONS_AT_ONCE = 4
"""Evaluations in progress (their child computing) per user and on the whole server; more are a 429
(enforced by the evaluate endpoints: rewards_api.server.routes)."""
MAX_ANSWER_BYTES = 64 << 20
"""Bytes of JSON an evaluation child may send back (its metrics and every trial's car poses)."""


class EvaluationFailed(RuntimeError):
    """The evaluation could not be done; ``status`` is the HTTP status that fits (404, 409, 422, 504)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class EvaluationRun:
    """One evaluation in progress: its child process (once started) and whether it was cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self.cancelled = False

    def attach(self, process: BaseProcess) -> None:
        """The run's child process has started; it is killed at once if the run was cancelled meanwhile."""
        with self._lock:
            self._process = process
            if self.cancelled:
                process.kill()

    def cancel(self) -> None:
        """End the run: kill its child (an evaluation being computed), stop its replay."""
        with self._lock:
            self.cancelled = True
            if self._process is not None:
                with contextlib.suppress(OSError, ValueError):  # already exited, or closed
                    self._process.kill()

    def wait(self, timeout: float) -> bool:
        """Whether the child has exited (or never started) within ``timeout`` seconds. Its sentinel is
        watched, not joined: the thread that runs the evaluation reaps it."""
        with self._lock:
            process = self._process
        if process is None:
            return True
        try:
            return bool(wait([process.sentinel], timeout))
        except ValueError:  # closed: reaped already
            return True


class EvaluationRuns:
    """The evaluations in progress, by (user, session id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str | None, str], set[EvaluationRun]] = {}

    def begin(self, key: tuple[str | None, str]) -> EvaluationRun:
        run = EvaluationRun()
        with self._lock:
            self._runs.setdefault(key, set()).add(run)
        return run

    def finish(self, key: tuple[str | None, str], run: EvaluationRun) -> None:
        with self._lock:
            runs = self._runs.get(key, set())
            runs.discard(run)
            if not runs:
                self._runs.pop(key, None)

    def cancel(self, key: tuple[str | None, str], timeout: float = KILL_WAIT) -> bool:
        """Cancel the session's evaluations and wait up to ``timeout`` seconds for their children to exit;
        whether they all did (then none of them can write into the session's folder any more)."""
        with self._lock:
            runs = list(self._runs.get(key, ()))
        for run in runs:
            run.cancel()
        return all(run.wait(timeout) for run in runs)


_registry_lock = threading.Lock()


def evaluations_of(state: Any) -> EvaluationRuns:
    """The app's evaluations in progress (``app.state``), made on first use."""
    with _registry_lock:
        runs = getattr(state, "evaluations", None)
        if runs is None:
            runs = state.evaluations = EvaluationRuns()
        return runs


async def until_cancelled(parts: AsyncIterator[bytes], run: EvaluationRun, done: Callable[[], None]
                          ) -> AsyncIterator[bytes]:
    """``parts`` until ``run`` is cancelled (its session deleted); ``done()`` when the stream ends."""
    try:
        async for part in parts:
            if run.cancelled:
                return
            yield part
    finally:
        done()


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    poses: list[list[CarPose]]  # one list per trial


def _send(connection: Any, answer: list[Any]) -> None:
    """The child's answer, as JSON (the server never unpickles what a process running user code sends)."""
    connection.send_bytes(json.dumps(answer).encode())


def _child(connection: Any, output: Any, home: str, session_id: str, mode: str, track: int | str,
           trials: int, niceness: int) -> None:
    processes.lower_priority(niceness)  # user code runs here: the server's answers come first

    import faulthandler

    from ..envs.reward import RewardFunctionError
    from ..runs.evaluate import ModelNotTrained, evaluate
    from ..runs.reward_limits import install
    from ..store import SessionStore

    redirect_output(output)  # read by the server, bounded and escaped (rewards_api.runs.child_output)
    faulthandler.enable()
    install()  # the reward function runs here: memory and CPU limits first (rewards_api.runs.reward_limits)
    try:
        poses: list[list[CarPose]] = []
        metrics = evaluate(SessionStore(home), session_id, mode, track, trials, poses=poses)
        _send(connection, ["ok", metrics, poses])
    except ModelNotTrained as exc:
        _send(connection, ["error", str(exc), 409])
    except MemoryError:
        _send(connection, ["error", "the evaluation used too much memory (MemoryError) and was stopped", 422])
    except (RewardFunctionError, ValueError) as exc:
        _send(connection, ["error", str(exc), 422])
    except Exception as exc:  # reported to the client instead of a bare 500
        _send(connection, ["error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}", 500])
    finally:
        connection.close()


def _answer(receiver: Any) -> tuple[str, Any, Any]:
    """The child's answer: JSON, bounded (EOFError when it sent none); a malformed one is an error."""
    try:
        answer = json.loads(receiver.recv_bytes(MAX_ANSWER_BYTES))
    except (OSError, ValueError):  # too long, or not JSON
        return "error", "the evaluation process sent an unreadable answer", 500
    if (isinstance(answer, list) and len(answer) == 3 and answer[0] in ("ok", "error")
            and (answer[0] == "ok" or (isinstance(answer[1], str) and answer[2] in (409, 422, 500)))):
        return answer[0], answer[1], answer[2]
    return "error", "the evaluation process sent an unreadable answer", 500


def run_evaluation(home: Path, session_id: str, mode: str, track: int | str, trials: int = 5,
                   timeout: float = EVALUATION_TIMEOUT, run: EvaluationRun | None = None) -> Evaluation:
    """Evaluate in a new process (:mod:`rewards_api.runs.processes`); blocks (call it from a worker thread,
    not the event loop). ``run``: cancelling it kills the process (EvaluationFailed 404: the session is
    being deleted)."""
    context = processes.context()  # a fork of a process with PyTorch and the tracks loaded
    receiver, sender = context.Pipe(duplex=False)
    output_reader, output_writer = context.Pipe(duplex=False)
    try:
        niceness = processes.child_niceness(EVALUATION_NICENESS)
        process = context.Process(target=_child, args=(sender, output_writer, str(home), session_id, mode,
                                                       track, trials, niceness), daemon=True)
        process.start()
    except BaseException:
        output_reader.close()
        raise
    finally:
        sender.close()
        output_writer.close()
    output = OutputRelay.of(output_reader, f"evaluation of session {session_id}")
    if run is not None:
        run.attach(process)
    try:
        if not receiver.poll(timeout):
            raise EvaluationFailed(f"the evaluation took longer than {timeout:g} s and was stopped", 504)
        try:
            answer = _answer(receiver)
        except EOFError:
            process.join(5)
            if run is not None and run.cancelled:
                deleted = f"session {session_id!r} was deleted during its evaluation"
                raise EvaluationFailed(deleted, 404) from None
            message = f"the evaluation process exited unexpectedly (exit code {process.exitcode})"
            output.join(1.0)  # a crash: faulthandler's report names the reward's line
            explained = explain_exit(process.exitcode, message, output.tail)  # a limit or a crash: the fix
            raise EvaluationFailed(explained, 500 if explained == message else 422) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receiver.close()
    if answer[0] == "ok":
        return Evaluation(metrics=answer[1], poses=answer[2])
    raise EvaluationFailed(answer[1], answer[2])
