"""Pushing models to S3-compatible storage (``/push_model``) and the leaderboards (``/get_user_list``,
``/leaderboard``).

Handlers are plain ``def``: boto3 blocks, so FastAPI runs them in its thread pool, never on the event loop.
The bucket comes from the settings (``--s3-bucket``, ``--s3-endpoint-url``, ``--s3-region``); its client is
made on first use and shared. Storage failures are answered with :class:`~rewards_api.cloud.CloudError`'s
status and message: 400 no bucket configured (for a push), 409 a session not trained or evaluated yet, 502
the storage refused (no such bucket, credentials missing or refused, access denied, checksums), 503 it
cannot be reached. Without a bucket, ``get_user_list`` lists this server's evaluated sessions instead, so
that the original UI's leaderboard page works on a laptop.

Both leaderboards rank by laps completed on the evaluation track, then best lap time, then progress
(:func:`rewards_api.cloud.rank`); ``score`` (the final evaluation score, in the units of each user's reward
function) is still in every row, but never decides a place.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..cloud import (
    OWNER_NAME,
    Bucket,
    CloudError,
    Standing,
    bucket_leaderboard,
    check_user,
    check_user_id,
    leaderboard,
    leaderboard_user,
    local_leaderboard,
    open_bucket,
    push_session,
)
from .auth import CurrentCaller
from .models import ErrorResponse, MessageResponse, SessionRequest, StatusResponse
from .routes import Store, ok

router = APIRouter()

_opening = threading.Lock()


class _Open(BaseModel):
    """Part of a signed-in user's object: the fields the leaderboards read, and any others, kept."""

    model_config = ConfigDict(extra="allow")


class IdentityData(_Open):
    """An identity's ``identity_data``; the original UI's leaderboard shows full_name, email, avatar_url."""

    full_name: str | None = None
    name: str | None = None
    email: str | None = None
    avatar_url: str | None = None


class UserMetadata(IdentityData):
    """A user's ``user_metadata``: what the sign-in provider says of them."""


class Identity(_Open):
    identity_data: IdentityData | None = None


class UserProfile(_Open):
    """The signed-in user's object, as the original UI sends it (Supabase's ``auth.getUser()``), kept as
    ``user.json``: at most 16 KiB of JSON, 8 levels deep, no access tokens."""

    id: str | None = None
    email: str | None = None
    user_metadata: UserMetadata | None = None
    identities: list[Identity] | None = None


class PushModelRequest(SessionRequest):
    """``POST /push_model``, as the original UI sends it."""

    user_id: str = Field(description="Whose model: the folder Models/<user_id>/ in the bucket. A user other "
                         "than the server's owner must give their own user name.")
    user: str | UserProfile = Field(description="The name shown on the leaderboards, or the signed-in user's "
                                    "object (the name is then its full name, else its name or email).")

    @field_validator("user_id", mode="before")
    @classmethod
    def _check_user_id(cls, value: Any) -> str:
        return check_user_id(value)

    @field_validator("user", mode="before")
    @classmethod
    def _check_user(cls, value: Any) -> str | dict[str, Any]:
        return check_user(value)

    def pushed_user(self) -> str | dict[str, Any]:
        """``user`` as sent: a name, or the user's object with every field it was sent with."""
        if isinstance(self.user, str):
            return self.user
        return self.user.model_dump(mode="json", exclude_unset=True)


class PushSummary(BaseModel):
    """``summary.json`` of a push: who, the final evaluation score, and the evaluation track's results."""

    user_id: str
    user: str
    session_id: str
    pushed_at: str  # ISO 8601, UTC
    score: float  # final_eval_score: the sum over evaluated tracks of record / num_trials
    record: float | None  # the evaluation track's (None: not evaluated on it)
    laps_completed: int | None
    mean_progress: float | None  # per cent of a lap
    num_trials: int | None
    best_lap_time: float | None = None  # seconds (None: no lap, or evaluated before lap times)
    best_lap_ratio: float | None = None  # the best lap / the reference from its start
    reference_lap_time: float | None = None  # seconds: the evaluation track's, from the start line
    car: str | None = None  # classic, discrete or continuous
    algorithm: str | None = None  # dqn or ppo: what trained the model evaluated
    model_configuration: str | list[list[int]] | None
    user_profile: UserProfile | None = Field(None, description="The user's object, for a push made with one.")


class PushModelResponse(MessageResponse):
    session_id: str
    bucket: str
    prefix: str  # Models/<user_id>/<session_id>/
    keys: list[str]
    summary: PushSummary


class UserScore(BaseModel):
    user: UserProfile = Field(description="The user's object, as the original UI's leaderboard reads it "
                              "(user.identities[0].identity_data.{full_name, email, avatar_url}): the one "
                              "pushed, or one built from the name.")
    name: str = Field(description="The name shown on the leaderboards.")
    score: float = Field(description="final_eval_score, as the original API gave it (the rows are ranked by "
                         "laps, best lap time and progress instead).")
    session_id: str


class UserListResponse(StatusResponse):
    """``GET /get_user_list``: the bucket's pushed models (without a bucket, this server's evaluated
    sessions), best first (by laps completed, then best lap time, then progress on the evaluation track),
    in the original UI's shape."""

    leaderboard_data: list[UserScore]


class LeaderboardEntry(BaseModel):
    rank: int
    user: str | None = Field(description="The user's name (null: the server's owner).")
    session_id: str
    score: float = Field(description="final_eval_score: the sum over evaluated tracks of record / "
                         "num_trials, in the reward function's units (shown, never ranked by).")
    record: float | None = Field(description="Best trial on the evaluation track (null: not evaluated "
                                 "there).")
    laps_completed: int | None = Field(description="Laps completed on the evaluation track: the first "
                                       "ranking key.")
    mean_progress: float | None = Field(description="Mean progress round the evaluation track, per cent: the "
                                        "third ranking key.")
    num_trials: int | None
    source: Literal["local", "bucket"] = Field(description="local: a session on this server; bucket: a push.")
    pushed_at: str | None
    best_lap_time: float | None = Field(description="Fastest lap on the evaluation track, simulated seconds: "
                                        "the second ranking key (null: no lap, or an evaluation made before "
                                        "lap times were recorded).")
    best_lap_ratio: float | None = Field(description="That lap's time over the reference lap time from its "
                                         "trial's start (1.18: 18 % slower than the physical limit).")
    reference_lap_time: float | None = Field(description="The evaluation track's reference lap time from the "
                                             "start line, seconds: the fastest lap the physics allows along "
                                             "its centre line.")
    car: Literal["classic", "discrete", "continuous"] | None = Field(description="The car evaluated (its "
                                                                     "action space; null: not recorded).")
    algorithm: Literal["dqn", "ppo"] | None = Field(None, description="The learning algorithm that trained "
                                                    "the model evaluated (null: not recorded).")


class LeaderboardResponse(StatusResponse):
    """``GET /leaderboard``: this server's evaluated sessions, and the bucket's pushes when one is set."""

    leaderboard: list[LeaderboardEntry]
    bucket: str | None = Field(description="The bucket read too (null: none configured).")
    bucket_error: str | None = Field(description="Why the bucket could not be read (its entries are "
                                     "missing); null when it was read or none is configured.")


STORAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorResponse, "description": "The S3 storage refused: no such bucket, AWS credentials "
          "missing or refused, access denied, or checksums that kept differing."},
    503: {"model": ErrorResponse, "description": "The S3 storage cannot be reached."},
}


def _bucket(request: Request) -> Bucket:
    """The server's bucket (its client made once); CloudError 400 when none is configured."""
    with _opening:
        bucket = getattr(request.app.state, "s3_bucket", None)
        if bucket is None:
            bucket = request.app.state.s3_bucket = open_bucket(request.app.state.settings)
        return bucket


@contextlib.contextmanager
def _storage_answers() -> Iterator[None]:
    """A CloudError becomes an error answer with its status and message."""
    try:
        yield
    except CloudError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post("/push_model", summary="Push a trained and evaluated session to the S3 bucket",
             response_model=PushModelResponse,
             responses={403: {"model": ErrorResponse, "description": "A user_id that is not the caller's."},
                        409: {"model": ErrorResponse, "description": "Not trained, or not evaluated yet."},
                        **STORAGE_ERRORS})
def push_model(request: Request, caller: CurrentCaller, store: Store, body: PushModelRequest) -> JSONResponse:
    """Upload the session's files and model, ``user.json`` and ``summary.json`` (with the final evaluation
    score) to ``Models/<user_id>/<session_id>/`` in the bucket, checksums verified; a new push of the same
    session replaces the last. The session must have been evaluated (409 otherwise)."""
    if not caller.is_owner and body.user_id != caller.name:  # nobody overwrites another user's models
        raise HTTPException(403, f"user_id {body.user_id!r} is not yours: push with user_id {caller.name!r}, "
                            "your user name on this server")
    with _storage_answers():
        bucket = _bucket(request)
        pushed = push_session(bucket, store, body.session_id, user_id=body.user_id, user=body.pushed_user())
    return ok(message=f"session {body.session_id!r} pushed to {pushed.url}", session_id=body.session_id,
              bucket=pushed.bucket, prefix=pushed.prefix, keys=pushed.keys, summary=pushed.summary)


@router.get("/get_user_list", summary="The bucket's leaderboard (without a bucket, this server's): models "
            "by user, best first", response_model=UserListResponse, responses=STORAGE_ERRORS)
def get_user_list(request: Request) -> JSONResponse:
    if request.app.state.settings.s3_bucket:
        with _storage_answers():
            standings = bucket_leaderboard(_bucket(request))
    else:  # a laptop: the original UI's leaderboard page shows this server's evaluated sessions
        standings = local_leaderboard(request.app.state.store.home)
    return ok(leaderboard_data=[_user_row(standing) for standing in standings])


def _user_row(standing: Standing) -> dict[str, Any]:
    return {"user": leaderboard_user(standing), "name": standing.user or OWNER_NAME, "score": standing.score,
            "session_id": standing.session_id}


@router.get("/leaderboard", summary="Evaluated sessions ranked by laps, best lap time and progress",
            response_model=LeaderboardResponse)
def get_leaderboard(request: Request) -> JSONResponse:
    """Every evaluated session on this server (every user's, by user name and session id only) and, when a
    bucket is configured, every pushed one, ranked by laps completed on the evaluation track, then best lap
    time (a session without a timed lap after those with one), then mean progress; never by the final
    evaluation score, which is in each reward function's own units. A bucket that cannot be read leaves
    its entries out and says why in ``bucket_error``."""
    settings = request.app.state.settings
    bucket = (lambda: _bucket(request)) if settings.s3_bucket else None
    standings, bucket_error = leaderboard(request.app.state.store.home, bucket)
    entries = [{"rank": place, **standing.entry()} for place, standing in enumerate(standings, 1)]
    return ok(leaderboard=entries, bucket=settings.s3_bucket, bucket_error=bucket_error)
