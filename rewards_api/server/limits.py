"""Bounds on what one client can ask of the server: request body size and trainings at once."""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """A request body over the server's bound: a 413 (an HTTPException, so that FastAPI's body parsing
    passes it on instead of turning it into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit:,} bytes: send less (a reward "
                         "function is a few kilobytes)")


class TooManyJobs(Exception):
    """A training that cannot be started now: the caller's own limit (429) or a full queue (503)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class LimitBodySize:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, before they are read into memory.

    A ``Content-Length`` over the bound is answered at once; a body without one (chunked) is counted as it
    arrives, and reading it raises :class:`BodyTooLarge` (the app's handler turns it into the 413).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _reply_413(send, BodyTooLarge(self.max_bytes).detail)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
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
