"""Bounds on what one client can ask of the server: request body size, trainings, evaluations and reward
checks at once (:class:`BoundedWork`).

Request bodies are parameters and reward functions (``max_body_bytes``, 1 MB), except on the
:data:`UPLOAD_PATHS`, whose body is a whole exported session (``max_upload_bytes``, 64 MB).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")

UPLOAD_PATHS = frozenset({"/api/v1/import"})
"""Paths whose body is an uploaded file (a session archive), bounded by ``max_upload_bytes``."""
DEFAULT_MAX_UPLOAD_BYTES = 64_000_000
BODY_HINT = "send less (a reward function is a few kilobytes)"
UPLOAD_HINT = ("import an archive this large with the command line (rewards-api import FILE.zip), or start "
               "the server with a larger REWARDS_MAX_UPLOAD_BYTES")


class BodyTooLarge(HTTPException):
    """A request body over the server's bound: a 413 (an HTTPException, so that FastAPI's body parsing
    passes it on instead of turning it into a 400)."""

    def __init__(self, limit: int, hint: str = BODY_HINT) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes: {hint}")


class TooManyJobs(Exception):
    """Work that cannot be started now (a training, an evaluation, a reward check): the caller's own limit
    or the server's (429), or a full queue of trainings (503)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LimitBodySize:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, before they are read into memory.

    Bodies sent to :data:`UPLOAD_PATHS` are bounded by ``max_upload_bytes`` instead: when it is not given,
    the app's ``state.settings.max_upload_bytes`` (else :data:`DEFAULT_MAX_UPLOAD_BYTES`). A
    ``Content-Length`` over the bound is answered at once; a body without one (chunked) is counted as it
    arrives, and reading it raises :class:`BodyTooLarge` (the app's handler turns it into the 413).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    def _bound(self, scope: Scope) -> tuple[int, str]:
        """The body bound of this request, and what to tell a client over it."""
        if scope.get("path") not in UPLOAD_PATHS:
            return self.max_bytes, BODY_HINT
        if self.max_upload_bytes is not None:
            return self.max_upload_bytes, UPLOAD_HINT
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        return getattr(settings, "max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES), UPLOAD_HINT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, hint = self._bound(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reply_413(send, BodyTooLarge(limit, hint).detail)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, hint)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reply_413(send: Send, message: str) -> None:
    body = json.dumps({"status": 413, "message": message, "detail": message}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BoundedWork:
    """Blocking work (an evaluation's child process, a reward check) bounded per user and overall, run on
    threads of its own: never on the event loop, and never on the thread pool that every other request
    needs.

    :meth:`run` refuses at once (:class:`TooManyJobs`, a 429) beyond ``per_user`` calls in flight for one
    user (the owner, ``None``, has no per-user bound) or ``overall`` for everyone; the admitted ones run on
    ``threads`` threads, and those waiting for one wait in the executor's queue, holding no thread.
    """

    def __init__(self, what: str, per_user: int, overall: int, threads: int, hint: str) -> None:
        self.what, self.per_user, self.overall, self.hint = what, per_user, overall, hint
        self._lock = threading.Lock()
        self._mine: collections.Counter[str | None] = collections.Counter()
        self._executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix=f"rewards-{what}")

    @contextlib.contextmanager
    def admitted(self, user: str | None) -> Iterator[None]:
        with self._lock:
            if user is not None and self._mine[user] >= self.per_user:
                raise TooManyJobs(f"you already have {self._mine[user]} {self.what}s in progress; the limit "
                                  f"is {self.per_user} at once per user: {self.hint}", 429)
            if sum(self._mine.values()) >= self.overall:
                raise TooManyJobs(f"the server already has {self.overall} {self.what}s in progress (its "
                                  f"limit): {self.hint}", 429)
            self._mine[user] += 1
        try:
            yield
        finally:
            with self._lock:
                self._mine[user] -= 1
                if not self._mine[user]:
                    del self._mine[user]

    async def run(self, user: str | None, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.admitted(user):
            call = functools.partial(function, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
