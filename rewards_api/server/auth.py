"""Token auth, like Jupyter's: ``Authorization: Bearer <token>``, or ``?token=`` where a browser cannot
set headers (``<img src>``, ``EventSource``). Compared in constant time."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request

UNAUTHORIZED = (
    "this server needs its token: send 'Authorization: Bearer <token>' or add '?token=<token>' to the URL "
    "(the token is printed when the server starts, and kept in <home>/server_token)"
)


def require_token(request: Request) -> None:
    """FastAPI dependency: a 401 unless the request carries the server's token (or auth is off)."""
    expected: str | None = request.app.state.token
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    supplied = credentials.strip() if scheme.lower() == "bearer" else request.query_params.get("token", "")
    if not supplied or not secrets.compare_digest(supplied.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
