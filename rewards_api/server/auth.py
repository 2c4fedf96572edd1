"""Who is calling: token auth like Jupyter's, with users.

A request carries a token as ``Authorization: Bearer <token>``, or as ``?token=`` where a browser cannot set
headers (``<img src>``, ``EventSource``). The server's own token (SPEC.md §6) is the local owner's, compared
in constant time; any other is looked up among the users' hashed tokens (:mod:`rewards_api.users`). With
auth off (``--no-auth``, loopback only) every caller is the owner.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..store import SessionStore, user_home

UNAUTHORIZED = (
    "this server needs a token: send 'Authorization: Bearer <token>' or add '?token=<token>' to the URL "
    "(the owner's token is printed when the server starts; users get theirs from `rewards-api users add`)"
)


@dataclass(frozen=True)
class Caller:
    """The user a request acts for: ``name`` is ``None`` for the local owner (an admin)."""

    name: str | None

    @property
    def is_owner(self) -> bool:
        return self.name is None


OWNER = Caller(None)
_TOKEN_IN_QUERY = re.compile(r"(?<=[?&]token=)[^&\s]+")


class RedactTokens(logging.Filter):
    """Hides ``?token=...`` in access-log lines: tokens in URLs must not end up in log files."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_QUERY.sub("***", arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def _supplied_token(request: Request) -> str:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    return request.query_params.get("token", "")


async def current_caller(request: Request) -> Caller:
    """FastAPI dependency: the caller, or a 401 unless the request carries a known token (or auth is off).

    ``async`` (like the other dependencies) although it does no I/O but a ``stat``: a plain ``def`` would
    cost each request a hop to the thread pool and back, a quarter of the server's time under load."""
    expected: str | None = request.app.state.token
    if expected is None:
        return OWNER
    supplied = _supplied_token(request)
    if supplied:
        if secrets.compare_digest(supplied.encode(), expected.encode()):
            return OWNER
        name = request.app.state.users.authenticate(supplied)
        if name is not None:
            return Caller(name)
    raise HTTPException(status_code=401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def caller_store(request: Request, caller: CurrentCaller) -> SessionStore:
    """FastAPI dependency: the store of the caller's own sessions (one instance per user, kept)."""
    stores: dict[str | None, SessionStore] = request.app.state.stores
    store = stores.get(caller.name)
    if store is None:
        home = user_home(request.app.state.store.home, caller.name)
        store = stores.setdefault(caller.name, SessionStore(home))
    return store
