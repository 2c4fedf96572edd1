"""The server's one JSON encoder for answers: every route's, every error handler's (see
:mod:`rewards_api.safe_json`: finite numbers and valid UTF-8, whatever user code produced)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from ..safe_json import clean_text, dumps


class SafeJSONResponse(JSONResponse):
    """A JSON answer whose non-finite floats are ``null`` and whose lone surrogates are U+FFFD."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


class EncodedJSONResponse(Response):
    """A JSON answer already encoded as :func:`rewards_api.safe_json.dumps` does (the store's cached
    encodings of the session documents)."""

    media_type = "application/json"


def sse_event(kind: str, data: Any) -> str:
    """One Server-Sent Event carrying ``data`` as JSON (encoded as answers are)."""
    return f"event: {clean_text(kind)}\ndata: {dumps(data).decode()}\n\n"
