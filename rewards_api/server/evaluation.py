"""Evaluations for the server: computed at full speed in a child process (the reward function runs
there), then replayed to viewers from the recorded car poses, with no user code in the server."""

from __future__ import annotations

import multiprocessing
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runs.evaluate import CarPose
from ..runs.reward_limits import explain_exit

EVALUATION_TIMEOUT = 120.0
"""Seconds an evaluation may take before its process is killed."""


class EvaluationFailed(RuntimeError):
    """The evaluation could not be done; ``status`` is the HTTP status that fits (409, 422, 504)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    poses: list[list[CarPose]]  # one list per trial


def _child(connection: Any, home: str, session_id: str, mode: str, track: int | str, trials: int) -> None:
    from ..envs.reward import RewardFunctionError
    from ..runs.evaluate import ModelNotTrained, evaluate
    from ..runs.reward_limits import install
    from ..store import SessionStore

    install()  # the reward function runs here: memory and CPU limits first (rewards_api.runs.reward_limits)
    try:
        poses: list[list[CarPose]] = []
        metrics = evaluate(SessionStore(home), session_id, mode, track, trials, poses=poses)
        connection.send(("ok", metrics, poses))
    except ModelNotTrained as exc:
        connection.send(("error", str(exc), 409))
    except MemoryError:
        connection.send(("error", "the evaluation used too much memory (MemoryError) and was stopped", 422))
    except (RewardFunctionError, ValueError) as exc:
        connection.send(("error", str(exc), 422))
    except Exception as exc:  # reported to the client instead of a bare 500
        connection.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}", 500))
    finally:
        connection.close()


def run_evaluation(home: Path, session_id: str, mode: str, track: int | str, trials: int = 5,
                   timeout: float = EVALUATION_TIMEOUT) -> Evaluation:
    """Evaluate in a fresh process; blocks (call it from a worker thread, not the event loop)."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, str(home), session_id, mode, track, trials),
                              daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise EvaluationFailed(f"the evaluation took longer than {timeout:g} s and was stopped", 504)
        try:
            answer = receiver.recv()
        except EOFError:
            process.join(5)
            message = f"the evaluation process exited unexpectedly (exit code {process.exitcode})"
            explained = explain_exit(process.exitcode, message)  # a limit on the reward code: the user's fix
            raise EvaluationFailed(explained, 500 if explained == message else 422) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receiver.close()
    if answer[0] == "ok":
        return Evaluation(metrics=answer[1], poses=answer[2])
    raise EvaluationFailed(answer[1], answer[2])
