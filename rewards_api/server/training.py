"""Training over HTTP: start, watch (MJPEG), follow (Server-Sent Events), list and stop jobs.

Trainings run in worker processes managed by :class:`rewards_api.runs.jobs.JobManager`; these handlers
only start, stop and relay. Closing a stream never stops a training.

Training a session that has a model continues it (a warm start, or the rest of an interrupted run; see
:mod:`rewards_api.runs.train`); ``?fresh=true`` on ``/train`` and ``/stream`` starts a new model instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..runs.jobs import JobManager, QueueFull, UserLimitReached
from ..store import SessionNotFound, SessionStore
from .auth import Caller, CurrentCaller
from .limits import TooManyJobs
from .live import LiveViews
from .models import ErrorResponse, JobResponse, JobsResponse, StartResponse, StopResponse
from .responses import sse_event
from .routes import SessionId, Store, ok
from .streams import MJPEG_MEDIA_TYPE, mjpeg_response
from .ui_metrics import follow_for_ui

router = APIRouter()

SSE_KEEPALIVE = 15.0
"""Seconds between comments that keep an idle event stream open through proxies."""
FINAL_KINDS = ("finished", "failed")
START_REFUSALS: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorResponse, "description": "The user already has as many trainings as allowed"},
    503: {"model": ErrorResponse, "description": "The queue of trainings waiting for a slot is full"},
}

Fresh = Annotated[bool, Query(description=(
    "Start a new model (new weights, empty metrics and runs history) instead of continuing the session's "
    "model. Ignored when the session is already training."))]


WatchStarts = Annotated[bool, Query(description=(
    "Start a training when the session is not training (the original's behaviour). With false, only "
    "watch: a 409 when the session has no queued or running training."))]


def jobs_of(request: Request) -> JobManager:
    return request.app.state.jobs


def check_startable(store: SessionStore, session_id: str) -> None:
    """ParameterError (a 422) for a session whose training would fail at once: a network that does not fit
    its car, or a car its learning algorithm cannot train. No user code runs here."""
    from ..params import REWARD_CHECKED, EnvParams, TrainingParams, check_trainable, session_agent_params

    stored = store.all_params(session_id)
    env = EnvParams(**stored["env_params"])
    session_agent_params(env, stored["agent_params"])
    training = TrainingParams.model_validate(stored["training_params"], context=REWARD_CHECKED)
    check_trainable(env, training.learning_algorithm)


async def _start(request: Request, caller: Caller, store: SessionStore, session_id: str,
                 fresh: bool = False) -> dict[str, Any]:
    if not await asyncio.to_thread(store.exists, session_id):
        raise SessionNotFound(session_id)
    status = jobs_of(request).status(session_id, caller.name)
    if status is None or not status.active:  # one already training keeps going as it is
        await asyncio.to_thread(check_startable, store, session_id)
    limit = None if caller.is_owner else request.app.state.settings.max_user_jobs
    try:
        status = await asyncio.to_thread(jobs_of(request).start, session_id, caller.name, limit, fresh)
    except UserLimitReached as exc:
        raise TooManyJobs(str(exc), 429) from None
    except QueueFull as exc:
        raise TooManyJobs(str(exc), 503) from None
    return status.to_dict()


async def _active_job(request: Request, caller: Caller, store: SessionStore, session_id: str) -> None:
    if not await asyncio.to_thread(store.exists, session_id):
        raise SessionNotFound(session_id)
    status = jobs_of(request).status(session_id, caller.name)
    if status is None or not status.active:
        raise HTTPException(409, f"session {session_id!r} is not training: start it with POST /train, or "
                            "watch with start=true")


@router.get("/stream", summary="Watch the session train (MJPEG); starts training if it is not training",
            response_class=StreamingResponse,
            responses={200: {"content": {MJPEG_MEDIA_TYPE: {}}}, 409: {"model": ErrorResponse},
                       **START_REFUSALS})
async def stream(request: Request, caller: CurrentCaller, store: Store, session_id: SessionId,
                 fresh: Fresh = False, start: WatchStarts = True) -> StreamingResponse:
    if start:
        await _start(request, caller, store, session_id, fresh)
    else:
        await _active_job(request, caller, store, session_id)
    follow_for_ui(request, caller, session_id)
    views: LiveViews = request.app.state.live_views
    view = await views.view(session_id, caller.name)
    return mjpeg_response(view.parts())


@router.post("/train", summary="Start training without watching (or return the running job)",
             response_model=StartResponse, responses=START_REFUSALS)
async def train(request: Request, caller: CurrentCaller, store: Store, session_id: SessionId,
                fresh: Fresh = False) -> JSONResponse:
    job = await _start(request, caller, store, session_id, fresh)
    follow_for_ui(request, caller, session_id)
    return ok(job=job)


@router.get("/stop", summary="Stop the session's training, keeping what it learned",
            response_model=StopResponse)
async def stop(request: Request, caller: CurrentCaller, store: Store, session_id: SessionId) -> JSONResponse:
    if not await asyncio.to_thread(store.exists, session_id):
        raise SessionNotFound(session_id)
    status = await asyncio.to_thread(jobs_of(request).stop, session_id, caller.name)
    if status is None:
        return ok(message=f"session {session_id!r} is not training", job=None)
    return ok(message=f"stopping session {session_id!r}: what it learned is kept", job=status.to_dict())


@router.get("/jobs", summary="Every training job: queued, running, finished, failed or stopped",
            response_model=JobsResponse)
def list_jobs(request: Request, caller: CurrentCaller) -> JSONResponse:
    jobs = jobs_of(request).jobs()
    if not caller.is_owner:  # the owner (an admin) sees everyone's, each with its user
        jobs = [status for status in jobs if status.user == caller.name]
    return ok(jobs=[status.to_dict() for status in jobs])


@router.get("/jobs/{session_id}", summary="One session's training job", response_model=JobResponse)
def get_job(request: Request, caller: CurrentCaller, session_id: str) -> JSONResponse:
    status = jobs_of(request).status(session_id, caller.name)
    if status is None:
        raise HTTPException(404, f"session {session_id!r} has no training job: start one with POST /train")
    return ok(**status.to_dict())


@router.get("/metrics/stream", summary="Training events as Server-Sent Events (one per episode)",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def metrics_stream(request: Request, caller: CurrentCaller, store: Store, session_id: SessionId
                         ) -> StreamingResponse:
    if not await asyncio.to_thread(store.exists, session_id):
        raise SessionNotFound(session_id)
    subscription = jobs_of(request).subscribe(session_id, user=caller.name)

    async def events() -> AsyncIterator[str]:
        with subscription:
            while True:
                item = await subscription.next(timeout=SSE_KEEPALIVE)
                if item is None:
                    if subscription.closed:
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield sse_event(str(item.get("kind", "message")), item)
                if item.get("kind") in FINAL_KINDS or (
                    item.get("kind") == "state" and item.get("state") in ("finished", "failed", "stopped")
                ):
                    return

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
