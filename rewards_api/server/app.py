"""The FastAPI application: the original ``/api/v1`` API, token auth, CORS and errors that keep ``status``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..params import ParameterError, describe_errors
from ..store import InvalidSessionId, SessionError, SessionExists, SessionNotFound, SessionStore
from ..users import UserRegistry
from .auth import RedactTokens, current_caller
from .leaderboard import router as leaderboard_router
from .lifecycle import router as lifecycle_router
from .limits import LimitBodySize, TooManyJobs
from .models import ErrorResponse
from .responses import SafeJSONResponse
from .reward_check import fork_server
from .routes import Conflict, router
from .training import router as training_router
from .ui_metrics import UiMetricsFile

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def error(status: int, message: str, **extra: Any) -> SafeJSONResponse:
    """A JSON error that keeps the original API's ``status`` field and says what to fix."""
    body = {"status": status, "message": message, "detail": message, **extra}
    return SafeJSONResponse(body, status_code=status)


def create_app(settings: Settings, token: str | None) -> FastAPI:
    """The server for ``settings``; ``token`` is required on every API call (``None``: auth off)."""
    settings.check()
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(known, RedactTokens) for known in access_log.filters):
        access_log.addFilter(RedactTokens())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ..runs.jobs import JobManager
        from .live import LiveViews

        if settings.preload_workers:  # PyTorch for the live views and the workers' weights: now, not at
            import torch  # the first Train (~1.3 s, most of it holding the GIL the event loop needs)

            # The server's only networks are the live views' tiny ones: one thread, so that PyTorch's
            # spinning worker threads never take a core from a training.
            torch.set_num_threads(1)
        app.state.jobs = JobManager(settings.home, max_jobs=settings.max_jobs, max_queued=settings.max_queued,
                                    preload=settings.preload_workers)
        app.state.live_views = LiveViews(app.state.jobs)
        if app.state.ui_metrics is not None:
            app.state.ui_metrics.start()
        fork_server.ensure_running()  # its imports happen now, not during a student's first save
        # Everything loaded so far (FastAPI, pydantic, PyTorch: ~240,000 objects) lives as long as the
        # server: out of the collector's sight, a full collection no longer stops every request for 0.1 s.
        gc.freeze()
        try:
            yield
        finally:
            await app.state.live_views.close()
            await asyncio.to_thread(app.state.jobs.shutdown)
            if app.state.ui_metrics is not None:  # after the trainings stopped: their last scores too
                await asyncio.to_thread(app.state.ui_metrics.close)
            await asyncio.to_thread(fork_server.close)

    app = FastAPI(
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,  # every answer finite JSON in valid UTF-8
        title="rewards",
        version=__version__,
        summary="A local lab for learning reinforcement learning: the original rewards_api, fast and safe.",
    )
    app.state.settings = settings
    app.state.token = token
    app.state.store = SessionStore(settings.home)
    app.state.stores = {None: app.state.store}  # each user's store, made on their first request
    app.state.users = UserRegistry(settings.home)
    app.state.ui_metrics = (None if settings.ui_metrics_file is None
                            else UiMetricsFile(settings.ui_metrics_file, app.state.store))
    app.add_middleware(LimitBodySize, max_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_credentials=True,
                       allow_methods=["*"], allow_headers=["*"])
    errors = {status: {"model": ErrorResponse} for status in (400, 401, 404, 409, 413, 422, 507)}
    for area in (router, training_router, lifecycle_router, leaderboard_router):
        app.include_router(area, prefix=API_PREFIX, dependencies=[Depends(current_caller)], responses=errors)

    @app.get("/health", summary="Liveness (no token needed)")
    async def health() -> dict[str, Any]:
        return {"status": 200, "ok": True, "version": __version__}

    @app.exception_handler(StarletteHTTPException)  # FastAPI's, and Starlette's own (405, body parse 400)
    def http_error(request: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> SafeJSONResponse:
        problems = describe_errors(exc.errors())
        return error(422, problems[0]["message"] if problems else "invalid request", errors=problems)

    @app.exception_handler(ParameterError)
    def invalid_parameter(request: Request, exc: ParameterError) -> SafeJSONResponse:
        problem = {"parameter": exc.parameter, "message": str(exc)}
        if exc.line is not None:
            problem["line"] = exc.line
        return error(422, str(exc), errors=[problem])

    @app.exception_handler(InvalidSessionId)
    def invalid_session(request: Request, exc: InvalidSessionId) -> SafeJSONResponse:
        return error(422, str(exc), errors=[{"parameter": "session_id", "message": str(exc)}])

    @app.exception_handler(SessionNotFound)
    def not_found(request: Request, exc: SessionNotFound) -> SafeJSONResponse:
        return error(404, str(exc))

    @app.exception_handler(SessionExists)
    def exists(request: Request, exc: SessionExists) -> SafeJSONResponse:
        return error(409, str(exc))

    @app.exception_handler(Conflict)
    def conflict(request: Request, exc: Conflict) -> SafeJSONResponse:
        return error(409, str(exc))

    @app.exception_handler(TooManyJobs)
    def too_many_jobs(request: Request, exc: TooManyJobs) -> SafeJSONResponse:
        return error(exc.status, str(exc))

    @app.exception_handler(OSError)
    def storage_error(request: Request, exc: OSError) -> SafeJSONResponse:
        # Writes are atomic: whatever failed, the files already saved are intact.
        log.error("storage: %s", exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return error(507, f"the disk holding {settings.home} is full (or over its quota): free some "
                         "space and try again; nothing saved was changed")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return error(500, f"the server cannot write in {settings.home} ({exc.strerror}): give it a "
                         "writable home folder (--home or REWARDS_HOME); nothing saved was changed")
        return error(500, f"the server could not read or write its files: {exc.strerror or exc}")

    @app.exception_handler(SessionError)
    def broken_session(request: Request, exc: SessionError) -> SafeJSONResponse:
        log.error("session files: %s", exc)
        return error(500, f"the session's files could not be read: {exc}")

    if settings.web_ui:
        from ..ui import mount

        mount(app, auth_on=token is not None)
    return app
