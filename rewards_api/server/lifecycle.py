"""Model cards (``/model_info``, ``/model_plot.png``) and moving sessions between machines (export,
import).

Each caller sees only their own sessions (the ``Store`` dependency): another user's session id is a 404,
as for the other endpoints. File work runs in the thread pool (plain ``def`` handlers, or
``asyncio.to_thread`` for the upload), never on the event loop.
"""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from ..archive import ArchiveError, export_session, import_session
from ..cards import (
    MAX_PLOT_HEIGHT,
    MAX_PLOT_WIDTH,
    MIN_PLOT_HEIGHT,
    MIN_PLOT_WIDTH,
    model_card,
    session_plot_png,
)
from .models import ErrorResponse, ImportResponse, ModelCardResponse, check_session_id
from .routes import SessionId, Store, ok

router = APIRouter()

ZIP_MEDIA_TYPE = "application/zip"
ACCEPTED_UPLOAD_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
"""Content types an archive may be sent as (or none at all)."""


def _errors(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI error responses from ``{status: description}``."""
    return {status: {"model": ErrorResponse, "description": text} for status, text in descriptions.items()}


NOT_FOUND = "No session with this id among the caller's sessions"
INVALID_ID = "The session id is not 1-64 letters, digits or underscores"


@router.get("/model_info", summary="A session's model card: dates, configuration, record, evaluations, runs",
            response_model=ModelCardResponse,
            responses=_errors({404: NOT_FOUND, 422: INVALID_ID}))
def model_info(store: Store, session_id: SessionId) -> JSONResponse:
    return ok(**model_card(store, session_id))


@router.get("/model_plot.png", summary="A session's score and mean score over episodes (PNG chart)",
            response_class=Response,
            responses={200: {"content": {"image/png": {}}},
                       **_errors({404: NOT_FOUND, 422: "A bad session id, width or height"})})
def model_plot(
    store: Store,
    session_id: SessionId,
    width: Annotated[int, Query(ge=MIN_PLOT_WIDTH, le=MAX_PLOT_WIDTH, description="Pixels.")] = 320,
    height: Annotated[int, Query(ge=MIN_PLOT_HEIGHT, le=MAX_PLOT_HEIGHT, description="Pixels.")] = 160,
) -> Response:
    png = session_plot_png(store, session_id, width, height)
    # It changes with every episode while the session trains.
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get("/export", summary="Download a session with its model as a zip archive",
            response_class=Response,
            responses={200: {"content": {ZIP_MEDIA_TYPE: {}},
                             "description": "The archive, for POST /import or `rewards-api import`"},
                       **_errors({404: NOT_FOUND, 422: INVALID_ID})})
def export(store: Store, session_id: SessionId) -> Response:
    buffer = io.BytesIO()
    export_session(store, session_id, buffer)
    return Response(buffer.getvalue(), media_type=ZIP_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{session_id}.zip"',
                             "Cache-Control": "no-store"})


@router.post("/import", summary="Import a session archive (the zip itself as the body) as a new session",
             response_model=ImportResponse,
             responses=_errors({
                 409: "A session with this id exists: send ?session_id=NEW_ID",
                 413: "The body is over the upload bound, or the archive expands to too much",
                 415: "The body is not sent as application/zip",
                 422: "The archive is refused (bad paths, links, unknown files, bad JSON or model), or "
                      "the id is not valid",
             }),
             # application/octet-stream too: what generic clients (and schemathesis) send for binary files.
             openapi_extra={"requestBody": {"required": True, "content": {
                 media_type: {"schema": {"type": "string", "format": "binary"}}
                 for media_type in (ZIP_MEDIA_TYPE, "application/octet-stream")}}})
async def import_archive(
    request: Request,
    store: Store,
    session_id: Annotated[str | None, Query(description="Import under this id instead of the archive's."
                                            )] = None,
) -> JSONResponse:
    if session_id is not None:
        check_session_id(session_id)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type not in ACCEPTED_UPLOAD_TYPES:
        raise HTTPException(415, f"the body is sent as {media_type!r}: send the archive itself as the body "
                            "with Content-Type: application/zip (curl --data-binary @FILE.zip -H "
                            "'Content-Type: application/zip' ...), not as a form")
    body = await request.body()  # bounded by LimitBodySize (max_upload_bytes)
    if not body:
        raise HTTPException(422, "the body is empty: send the archive made by GET /api/v1/export (or "
                            "`rewards-api export`) as the body")
    try:
        imported = await asyncio.to_thread(import_session, store, io.BytesIO(body), session_id)
    except ArchiveError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return ok(message=f"session imported as {imported!r}", session_id=imported)
