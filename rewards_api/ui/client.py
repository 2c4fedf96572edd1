"""The web lab's way into the server: the ``/api/v1`` API itself, called in process.

Every action a page takes is an HTTP request to the same FastAPI application, with the signed-in user's
token, through httpx's ASGI transport: the same authentication, per-user stores, validation, limits and
error messages as any other client, and no second copy of any rule. Pictures and live streams (MJPEG,
Server-Sent Events, downloads) are fetched by the browser itself from :meth:`LabClient.url`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.types import ASGIApp

API_PATH = "/api/v1"
TOKEN_COOKIE = "rewards_token"
"""The browser cookie that remembers the signed-in token (HttpOnly: page scripts never see it)."""

_http: httpx.AsyncClient | None = None


class ApiError(Exception):
    """The API refused a request: ``status`` is the HTTP status, ``message`` says what to fix, and
    ``errors`` lists the problems by parameter (``line`` for a reward function's line, when known)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    @property
    def line(self) -> int | None:
        """The reward function's line the first error points at, if any."""
        for problem in self.errors:
            if isinstance(problem.get("line"), int):
                return problem["line"]
        return None


def connect(app: ASGIApp) -> None:
    """Route the lab's requests to ``app`` (the server's FastAPI application), in process."""
    global _http
    # raise_app_exceptions=False: an error inside the API is its 500 answer (an ApiError), as over HTTP,
    # never an exception of another type thrown into the page that made the call.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    _http = httpx.AsyncClient(transport=transport, base_url=f"http://lab{API_PATH}", trust_env=False,
                              timeout=httpx.Timeout(120.0))


class LabClient:
    """One signed-in browser's API client: ``token`` is sent with every request (``None``: auth is off)."""

    def __init__(self, token: str | None, user: str | None = None) -> None:
        self.token = token
        self.user = user

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   json: Any = None) -> Any:
        """The JSON answer of ``method path``; :class:`ApiError` for any 4xx or 5xx answer."""
        if _http is None:
            raise RuntimeError("the web lab is not connected to the API: call rewards_api.ui.client.connect")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await _http.request(method, path, params=params, json=json, headers=headers)
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    def url(self, path: str, **params: Any) -> str:
        """A URL of the API for the browser (``<img src>``, ``EventSource``, downloads): the token rides in
        the query, where a browser cannot set headers."""
        query = {name: value for name, value in params.items() if value is not None}
        if self.token:
            query["token"] = self.token
        return f"{API_PATH}/{path}?{urlencode(query)}" if query else f"{API_PATH}/{path}"

    # ----- the endpoints the pages use ------------------------------------------------------------------
    async def whoami(self) -> dict[str, Any]:
        return await self.call("GET", "/whoami")

    async def session_ids(self) -> list[str]:
        return sorted(await self.call("GET", "/get_all_sessions"))

    async def model_info(self, session_id: str) -> dict[str, Any]:
        return await self.call("GET", "/model_info", params={"session_id": session_id})

    async def all_params(self, session_id: str) -> dict[str, Any]:
        return await self.call("GET", "/get_all_params", params={"session_id": session_id})

    async def job(self, session_id: str) -> dict[str, Any] | None:
        """The session's training job, or ``None`` when it never trained since the server started."""
        try:
            return await self.call("GET", f"/jobs/{session_id}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def jobs(self) -> dict[str, dict[str, Any]]:
        """The caller's own jobs by session id (the owner's list also holds other users' jobs)."""
        answer = await self.call("GET", "/jobs")
        return {job["session_id"]: job for job in answer["jobs"] if job.get("user") == self.user}

    async def check_reward(self, source: str) -> None:
        await self.call("POST", "/check_reward_fn", json={"reward_function": source})

    async def train(self, session_id: str, fresh: bool = False) -> dict[str, Any]:
        return await self.call("POST", "/train", params={"session_id": session_id, "fresh": fresh})

    async def stop(self, session_id: str) -> dict[str, Any]:
        return await self.call("GET", "/stop", params={"session_id": session_id})

    async def delete(self, session_id: str) -> dict[str, Any]:
        return await self.call("POST", "/delete_session", params={"session_id": session_id})


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, response.text or response.reason_phrase)
    if not isinstance(body, dict):
        return ApiError(response.status_code, str(body))
    message = body.get("message") or body.get("detail") or response.reason_phrase
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    return ApiError(response.status_code, str(message), errors)
