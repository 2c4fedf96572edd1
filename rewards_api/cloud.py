"""Pushing sessions to S3-compatible storage, and the leaderboards: this server's and the bucket's.

A push copies a session's files and model to ``s3://<bucket>/Models/<user_id>/<session_id>/``::

    env_params.json  agent_params.json  training_params.json  training_metrics.json  evaluation_metrics.json
    session_saved_models/model_history.json  session_saved_models/model.pth
    user.json       {user_id, user, session_id, pushed_at}; for a push whose ``user`` is the signed-in
                    user's object (the original UI sends its Supabase user), that object itself
    summary.json    {user_id, user, session_id, score, record, laps_completed, mean_progress, num_trials,
                     best_lap_time, best_lap_ratio, reference_lap_time, car, model_configuration,
                     pushed_at}                                    (written last: it marks a complete push)
                    plus ``user_profile`` (the user's object) for such a push; ``user`` is then the display
                    name derived from it

Every leaderboard ranks by laps completed, then best lap time, then progress on the evaluation track
(:func:`rank`): never by ``score`` (``final_eval_score``, in the units of each user's reward function),
which the rows still carry for the original API.

The original UI's leaderboard reads ``user.identities[0].identity_data.{full_name, email, avatar_url}`` of
each row: :func:`leaderboard_user` gives that object for every standing, pushed with an object or a name.

The bucket, endpoint URL and region come from the settings; credentials only from the standard AWS chain
(``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws``, an instance role), never
from code or settings. Every object is sent with its SHA-256, which S3 checks on arrival, and compared with
what the storage says it kept (its SHA-256 and, for a plain single-part upload, the MD5 in its ETag): a
mismatch is uploaded again. Throttling, 5xx answers and dropped connections are retried by botocore.

Every failure is a :class:`CloudError` whose ``status`` is the HTTP status the server answers with and whose
message says what to fix: 400 no bucket configured; 409 a session that is not trained or not evaluated;
502 the storage refused (no such bucket, credentials missing or refused, access denied, wrong region,
checksums that keep differing); 503 the storage cannot be reached.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import scores
from .params import ParameterError
from .store import SESSION_FILES, SessionError, SessionNotFound, SessionStore
from .users import UserRegistry

if TYPE_CHECKING:
    from .config import Settings

__all__ = [
    "MODELS_PREFIX",
    "NO_BUCKET",
    "Bucket",
    "CloudError",
    "PushResult",
    "Standing",
    "bucket_leaderboard",
    "check_user",
    "check_user_id",
    "check_user_name",
    "check_user_profile",
    "display_name",
    "evaluation_summary",
    "leaderboard",
    "leaderboard_user",
    "local_leaderboard",
    "open_bucket",
    "push_session",
    "rank",
]

log = logging.getLogger(__name__)

MODELS_PREFIX = "Models"
"""The bucket's folder of pushed models: ``Models/<user_id>/<session_id>/``."""
NO_BUCKET = "no S3 bucket configured: start the server with --s3-bucket NAME or REWARDS_S3_BUCKET"
EVALUATION_TRACK = scores.EVALUATION_TRACK
"""The held-out evaluation track whose laps, lap times and progress the leaderboards rank by."""
USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
USER_ID_RULE = "use 1-128 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
MAX_USER_NAME = 64
MAX_PROFILE_BYTES = 16_384
"""Bound of a user's object as JSON (a Supabase user is 2-4 KB)."""
MAX_PROFILE_DEPTH = 8
"""Bound of its nesting (a Supabase user's deepest value, an identity's field, is at depth 4)."""
PROFILE_TEXT = ("full_name", "name", "email", "avatar_url")
"""Fields of ``user_metadata`` and of each identity's ``identity_data`` that must be text when present."""
_SECRETS = frozenset({"access_token", "refresh_token", "provider_token", "provider_refresh_token"})
OWNER_NAME = "owner"
"""The name shown for the server's owner's local sessions."""
ATTEMPTS = 3
"""Tries of each request (botocore's, for throttling, 5xx and lost connections) and of each upload whose
checksum differs (ours)."""
CREDENTIALS_HINT = (
    "give the server AWS credentials through the standard AWS chain: AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE naming a profile in "
    "~/.aws/credentials, or an instance role"
)
_BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                    "TokenRefreshRequired", "InvalidClientTokenId", "InvalidSecurity"}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
_BAD_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidChecksum"}
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
_SUMMARY_KEY = re.compile(rf"^{MODELS_PREFIX}/[^/]+/[A-Za-z0-9_]{{1,64}}/summary\.json$")
_READERS = 8  # summaries fetched at once for the bucket's leaderboard


class CloudError(Exception):
    """A push or a leaderboard that cannot be done: ``status`` is the HTTP status, ``str()`` says why and
    what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# ----- who pushes -----------------------------------------------------------------------------------------
def check_user_id(value: Any) -> str:
    """A user id fit for a bucket key (``Models/<user_id>/``), or a ParameterError naming ``user_id``."""
    if not isinstance(value, str) or USER_ID_PATTERN.fullmatch(value) is None:
        raise ParameterError("user_id", value, USER_ID_RULE)
    return value


def check_user_name(value: Any) -> str:
    """A display name for the leaderboards (1-64 printable characters, trimmed), or a ParameterError."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_USER_NAME \
            or not value.isprintable():
        raise ParameterError("user", value, f"use a name of 1-{MAX_USER_NAME} printable characters, or the "
                             "signed-in user's object")
    return value.strip()


def check_user(value: Any) -> str | dict[str, Any]:
    """A pushed ``user``: a display name (:func:`check_user_name`), or a signed-in user's object
    (:func:`check_user_profile`); ParameterError naming ``user`` otherwise."""
    return check_user_profile(value) if isinstance(value, dict) else check_user_name(value)


def check_user_profile(value: Any) -> dict[str, Any]:
    """A signed-in user's object as the original UI sends it (Supabase's ``auth.getUser()``: ``id``,
    ``email``, ``user_metadata{full_name, avatar_url}``, ``identities[{identity_data{...}}]``, ...), kept
    as it is: at most 16 KiB of JSON and 8 levels deep, text where the leaderboards read text, and no
    access token (a session's, sent by mistake, would be shared with everyone). ParameterError naming
    ``user`` and the field otherwise."""
    if not isinstance(value, dict):
        raise ParameterError("user", value, "send the signed-in user's object, or a name")
    if not _depth_within(value, MAX_PROFILE_DEPTH):
        raise ParameterError("user", value, f"the user's object is nested more than {MAX_PROFILE_DEPTH} "
                             "levels deep: send the signed-in user's object as Supabase gives it")
    try:
        size = len(json.dumps(value, allow_nan=False).encode())
    except ValueError:
        raise ParameterError("user", value, "the user's object holds NaN or infinity: numbers must be "
                             "finite") from None
    if size > MAX_PROFILE_BYTES:
        raise ParameterError("user", value, f"the user's object is {size} bytes of JSON; at most "
                             f"{MAX_PROFILE_BYTES} are kept")
    secret = _secret_key(value)
    if secret is not None:
        raise ParameterError("user", value, f"the user's object holds {secret!r}: send the user "
                             "(supabase.auth.getUser()), not the session with its tokens")
    _check_text(value, ("id", "email"), "user")
    _check_text(_member(value, "user_metadata", dict, "user"), PROFILE_TEXT, "user.user_metadata")
    for number, identity in enumerate(_member(value, "identities", list, "user")):
        where = f"user.identities[{number}]"
        if not isinstance(identity, dict):
            raise ParameterError("user", value, f"{where} must be an object, not {_kind(identity)}")
        data = _member(identity, "identity_data", dict, where, value)
        _check_text(data, PROFILE_TEXT, f"{where}.identity_data", value)
    return value


def _depth_within(value: Any, limit: int) -> bool:
    """Whether ``value``'s containers nest at most ``limit`` levels (iteratively: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return False
                stack.append((child, depth + 1))
    return True


def _secret_key(value: Any) -> str | None:
    """The first key anywhere in ``value`` that names a token (its depth is already bounded)."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key in _SECRETS:
                return key
            if (found := _secret_key(child)) is not None:
                return found
    elif isinstance(value, list):
        for child in value:
            if (found := _secret_key(child)) is not None:
                return found
    return None


def _member(parent: dict[str, Any], name: str, kind: type, where: str, whole: Any = None) -> Any:
    """``parent[name]`` if it is a ``kind`` (empty when absent or null); ParameterError otherwise."""
    member = parent.get(name)
    if member is None:
        return kind()
    if not isinstance(member, kind):
        expected = "an object" if kind is dict else "a list"
        raise ParameterError("user", parent if whole is None else whole,
                             f"{where}.{name} must be {expected}, not {_kind(member)}")
    return member


def _check_text(fields: dict[str, Any], names: tuple[str, ...], where: str, whole: Any = None) -> None:
    for name in names:
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise ParameterError("user", fields if whole is None else whole,
                                 f"{where}.{name} must be text, not {_kind(fields[name])}")


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "text", dict: "an object",
            list: "a list"}.get(type(value), type(value).__name__)


def _identity_data(profile: dict[str, Any]) -> list[dict[str, Any]]:
    identities = profile.get("identities")
    return [identity["identity_data"] for identity in identities if isinstance(identity, dict)
            and isinstance(identity.get("identity_data"), dict)] if isinstance(identities, list) else []


def display_name(profile: dict[str, Any], fallback: str) -> str:
    """The leaderboards' name for a user's object: its full name (``user_metadata``, then its
    identities'), else its name, else its email, else ``fallback``; printable, at most 64 characters."""
    metadata = profile.get("user_metadata") if isinstance(profile.get("user_metadata"), dict) else {}
    sources = [metadata, *_identity_data(profile)]
    candidates = [source.get(key) for key in ("full_name", "name") for source in sources]
    for candidate in [*candidates, profile.get("email"), fallback]:
        if isinstance(candidate, str):
            name = "".join(char for char in candidate if char.isprintable()).strip()[:MAX_USER_NAME].strip()
            if name:
                return name
    return fallback


# ----- scores ---------------------------------------------------------------------------------------------
def evaluation_summary(evaluation_metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The final evaluation score with the record, laps completed, mean progress, trials and best lap (its
    time, its ratio to the reference, the reference) on the evaluation track, all finite, and the car (see
    :func:`rewards_api.scores.evaluation_summary`); ``None`` for a session evaluated on no track at all.
    ValueError for metrics that are not numbers.

    The leaderboards and pushes do not read it from evaluation_metrics.json (which an import brings as
    it likes) but from the session's standing: :meth:`~rewards_api.store.SessionStore.standing`."""
    return scores.evaluation_summary(evaluation_metrics)


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """The evaluation track's figures of a pushed summary, checked as this server's own are
    (:func:`rewards_api.scores.track_figures`: anyone who can write to the bucket could have changed it);
    ``None`` for one missing or out of range (a push made before lap times were recorded has none)."""
    numbers = {name: metrics.get(name) if _is_number(metrics.get(name)) else None
               for name in ("record", "laps_completed", "mean_progress", "num_trials")}
    trials, laps, progress = numbers["num_trials"], numbers["laps_completed"], numbers["mean_progress"]
    if not isinstance(laps, int) or not 0 <= laps <= (trials if isinstance(trials, int) else laps):
        numbers["laps_completed"] = laps = None
    if progress is not None and not 0 <= progress <= 100:
        numbers["mean_progress"] = None
    lapped = bool(laps)
    for name in ("best_lap_time", "best_lap_ratio", "reference_lap_time"):
        value = metrics.get(name)
        ok = _is_number(value) and value > 0 and (lapped or name == "reference_lap_time")
        numbers[name] = float(value) if ok else None
    numbers["car"] = metrics.get("car") if metrics.get("car") in scores.CARS else None
    algorithm = metrics.get("algorithm")
    numbers["algorithm"] = algorithm if algorithm in scores.ALGORITHMS else None
    return numbers


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Standing:
    """One row of a leaderboard: a session, whose it is, and how it did on evaluation.

    ``user`` is ``None`` for the local server's owner; ``source`` is ``local`` (this server) or ``bucket``;
    ``profile`` is the user's object of a push made with one (see :func:`check_user_profile`). ``score``
    is the final evaluation score (shown, never ranked by); the rest is the evaluation track's: the best
    lap's time and its ratio to the reference from its start (seconds; ``None`` without a timed lap), the
    track's reference lap time, the car (``classic``, ``discrete`` or ``continuous``) and the algorithm that
    trained the model (``dqn`` or ``ppo``; ``None`` for an evaluation made before it was recorded).
    """

    session_id: str
    user: str | None
    score: float
    record: float | None
    laps_completed: int | None
    mean_progress: float | None
    num_trials: int | None
    source: str
    pushed_at: str | None = None
    best_lap_time: float | None = None
    best_lap_ratio: float | None = None
    reference_lap_time: float | None = None
    car: str | None = None
    algorithm: str | None = None
    profile: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def best_lap(self) -> str | None:
        """The best lap as shown beside the reference: ``"12.3 s (1.18x reference)"``, or ``None``."""
        return scores.lap_text(self.best_lap_time, self.best_lap_ratio)

    def entry(self) -> dict[str, Any]:
        """The standing as a leaderboard entry (``/leaderboard``, ``rewards-api leaderboard --json``): its
        fields but the user's object, which only ``get_user_list`` rows carry."""
        return {name: value for name, value in vars(self).items() if name != "profile"}


def leaderboard_user(standing: Standing) -> dict[str, Any]:
    """The ``user`` of a ``get_user_list`` row, which the original UI reads as
    ``user.identities[0].identity_data.{avatar_url, full_name, email}``: the object pushed, with those
    three filled in where it lacks them; for a push made with a name (or a local session), an object of
    the same shape built from the name."""
    name = standing.user or OWNER_NAME
    if standing.profile is None:
        data = {"full_name": name, "email": "", "avatar_url": ""}
        return {"email": "", "user_metadata": {"full_name": name, "avatar_url": ""},
                "identities": [{"identity_data": data}]}
    user = json.loads(json.dumps(standing.profile))  # a copy: the standing stays as read
    metadata = user.get("user_metadata") if isinstance(user.get("user_metadata"), dict) else {}
    if not isinstance(user.get("identities"), list) or not user["identities"]:
        user["identities"] = [{}]
    if not isinstance(user["identities"][0], dict):
        user["identities"][0] = {}
    first = user["identities"][0]
    if not isinstance(first.get("identity_data"), dict):
        first["identity_data"] = {}
    wanted = {"full_name": name, "email": user.get("email") or metadata.get("email") or "",
              "avatar_url": metadata.get("avatar_url") or ""}
    for key, value in wanted.items():
        if not isinstance(first["identity_data"].get(key), str):
            first["identity_data"][key] = value if isinstance(value, str) else ""
    return user


def rank(standings: list[Standing]) -> list[Standing]:
    """Best first: by laps completed on the evaluation track, then best lap time (faster first; a session
    without a timed lap after), then mean progress (:func:`rewards_api.scores.rank_key`); ties by session
    id, a push before its local session. Never by ``score``: a reward function's units are its own."""
    return sorted(standings, key=lambda s: (*scores.rank_key(s.laps_completed, s.best_lap_time,
                                                             s.mean_progress),
                                            s.session_id, s.source, s.user or ""))


def leaderboard(home: Path, bucket: Callable[[], Bucket] | None = None) -> tuple[list[Standing], str | None]:
    """This server's standings (:func:`local_leaderboard`) and, when ``bucket`` gives a bucket, its pushes
    (:func:`bucket_leaderboard`), ranked together; and why the bucket could not be read (``None`` if it was
    read, or there is none): a storage problem leaves the local standings standing."""
    standings = local_leaderboard(home)
    if bucket is None:
        return standings, None
    try:
        pushed = bucket_leaderboard(bucket())
    except CloudError as exc:
        return standings, str(exc)
    return rank(standings + pushed), None


def local_leaderboard(home: Path) -> list[Standing]:
    """Every evaluated session on this server, the owner's and each user's, ranked."""
    homes: list[tuple[str | None, Path]] = [(None, home)]
    homes += [(user.name, user.home) for user in UserRegistry(home).list()]
    standings = []
    for user, folder in homes:
        store = SessionStore(folder)
        for session_id in store.list_sessions():
            try:
                # A small file of this server's own results: never a document the user can make large.
                summary = store.standing(session_id)
            except SessionNotFound:  # deleted meanwhile
                continue
            except (SessionError, OSError) as exc:  # a broken session: its problem, not everyone's
                log.warning("leaderboard: skipping session %s of %s: %s", session_id, user or "the owner",
                            exc)
                continue
            if summary is not None:
                standings.append(Standing(session_id=session_id, user=user, source="local", **summary))
    return rank(standings)


# ----- the bucket -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    """An S3 bucket and a client for it (thread-safe; made by :func:`open_bucket`)."""

    name: str
    endpoint_url: str | None
    region: str | None
    client: Any = field(repr=False)

    @property
    def where(self) -> str:
        """``s3://name`` and, for S3-compatible storage, its endpoint (for messages; never a secret)."""
        return f"s3://{self.name}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")


def open_bucket(settings: Settings) -> Bucket:
    """The settings' bucket, with a client that finds credentials the standard AWS way (nothing is sent
    yet); CloudError 400 when no bucket is configured."""
    if not settings.s3_bucket:
        raise CloudError(400, NO_BUCKET)
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    endpoint_url = settings.s3_endpoint_url
    # Path-style addressing for S3-compatible servers: "bucket.127.0.0.1" resolves nowhere.
    config = Config(retries={"total_max_attempts": ATTEMPTS, "mode": "standard"}, connect_timeout=5,
                    read_timeout=30, s3={"addressing_style": "path"} if endpoint_url else None)
    try:
        client = boto3.session.Session().client("s3", endpoint_url=endpoint_url,
                                                region_name=settings.s3_region, config=config)
    except BotoCoreError as exc:  # e.g. AWS_PROFILE naming a profile that is not there
        raise CloudError(502, f"could not use s3://{settings.s3_bucket}: {exc}; {CREDENTIALS_HINT}") from None
    return Bucket(settings.s3_bucket, endpoint_url, settings.s3_region, client)


@contextlib.contextmanager
def _storage_errors(bucket: Bucket, action: str) -> Iterator[None]:
    """Turn botocore's exceptions into CloudErrors that say what to fix; ``action`` completes "could not
    ..."."""
    from botocore import exceptions as aws

    try:
        yield
    except (aws.NoCredentialsError, aws.PartialCredentialsError) as exc:
        found = "no" if isinstance(exc, aws.NoCredentialsError) else "incomplete"
        message = f"could not {action}: {found} AWS credentials found; {CREDENTIALS_HINT}"
        raise CloudError(502, message) from None
    except (aws.ConnectionError, aws.HTTPClientError) as exc:
        raise CloudError(503, f"could not {action}: the storage cannot be reached ({exc}); "
                         "check that it is running and the server's --s3-endpoint-url "
                         "(REWARDS_S3_ENDPOINT_URL), then try again") from None
    except aws.ClientError as exc:
        raise CloudError(502, _refusal(bucket, action, exc.response)) from None
    except aws.BotoCoreError as exc:
        raise CloudError(502, f"could not {action}: {exc}") from None


def _refusal(bucket: Bucket, action: str, response: dict[str, Any]) -> str:
    """What an error answer of the storage means, and what to do about it."""
    error = response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).strip()
    if code == "NoSuchBucket":
        return (f"could not {action}: the bucket {bucket.name!r} does not exist there: create it (e.g. "
                f"`aws s3 mb s3://{bucket.name}`), or choose an existing bucket with --s3-bucket NAME "
                "(REWARDS_S3_BUCKET)")
    if code in _BAD_CREDENTIALS:
        return (f"could not {action}: the S3 storage refused the server's AWS credentials ({code}: "
                f"{message}); {CREDENTIALS_HINT}, and check that they are right and not expired")
    if code in _WRONG_REGION:
        return (f"could not {action}: {bucket.where} is in another region ({code}: {message}); start the "
                "server with --s3-region (REWARDS_S3_REGION) set to the bucket's region")
    if code in ("AccessDenied", "AllAccessDisabled", "403"):
        return (f"could not {action}: the server's AWS credentials were denied access ({code}: {message}); "
                f"allow them s3:PutObject, s3:GetObject and s3:ListBucket on bucket {bucket.name!r}")
    detail = f"{code}: {message}" if message else code or "an error"
    return f"could not {action}: {bucket.where} answered {detail}"


def _put_verified(bucket: Bucket, key: str, body: bytes) -> None:
    """Upload ``body`` to ``key`` and check that the storage kept exactly it; upload again if not."""
    from botocore.exceptions import ClientError

    sha256 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    content_type = "application/json" if key.endswith(".json") else "application/octet-stream"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # Declared SHA-256: S3 refuses (BadDigest) a body that arrives different from what was sent.
            answer = bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body,
                                              ContentType=content_type, ChecksumAlgorithm="SHA256",
                                              ChecksumSHA256=sha256)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _BAD_DIGEST:
                raise
        else:
            if _kept_matches(answer, sha256, md5):
                return
        log.warning("s3://%s/%s: the stored copy differs from what was sent (attempt %d of %d)",
                    bucket.name, key, attempt, ATTEMPTS)
    raise CloudError(502, f"could not push {key}: {bucket.where} kept a copy that differs from what was "
                     f"sent, {ATTEMPTS} times (checksums differ); check the storage and push again")


def _kept_matches(answer: dict[str, Any], sha256: str, md5: str) -> bool:
    """Whether the storage's account of an upload matches the body: its SHA-256 if it reports one, and the
    ETag, which is the MD5 of a single-part upload unless the object is encrypted with KMS or a customer
    key."""
    reported = answer.get("ChecksumSHA256")
    if reported is not None and reported != sha256:
        return False
    etag = str(answer.get("ETag", "")).strip('"')
    encrypted = str(answer.get("ServerSideEncryption", "")).startswith("aws:kms") \
        or "SSECustomerAlgorithm" in answer
    return encrypted or not _MD5_ETAG.fullmatch(etag) or etag == md5


@dataclass(frozen=True)
class PushResult:
    """Where a push went: ``s3://bucket/prefix``, the keys written, and the summary."""

    bucket: str
    prefix: str
    keys: list[str]
    summary: dict[str, Any]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def push_session(bucket: Bucket, store: SessionStore, session_id: str, *, user_id: str,
                 user: str | dict[str, Any], now: datetime | None = None) -> PushResult:
    """Upload a trained and evaluated session (its files, model, ``user.json`` and ``summary.json``) to
    ``Models/<user_id>/<session_id>/`` in ``bucket``; an earlier push of it is replaced. ``user`` is the
    name to show, or the signed-in user's object (kept as ``user.json``; the name is derived from it).

    The files are read under the session's lock, so the push is one consistent state even while the session
    trains. SessionNotFound for an unknown session, ParameterError for a bad user id or name, CloudError
    otherwise (409: not trained or not evaluated yet).
    """
    user_id, checked = check_user_id(user_id), check_user(user)
    profile = checked if isinstance(checked, dict) else None
    name = display_name(profile, user_id) if profile is not None else str(checked)
    files = _snapshot(store, session_id)
    summary = store.standing(session_id)  # this server's evaluations only (an import's claims are not)
    if summary is None:
        raise CloudError(409, f"session {session_id!r} has no evaluation on this server yet, so no score "
                         "(an imported session's results count once evaluated here): evaluate it first "
                         f"(GET /api/v1/evaluate?session_id={session_id}&mode=evaluation&track_num=1, or "
                         f"`rewards-api evaluate {session_id} --mode evaluation`), then push it")
    agent = _document(files, "agent_params.json", session_id)
    pushed_at = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    identity = {"user_id": user_id, "user": name, "session_id": session_id, "pushed_at": pushed_at}
    summary = {**identity, **summary, "model_configuration": agent.get("model_configuration")}
    if profile is not None:  # in the summary too: the leaderboard reads one object per push
        summary["user_profile"] = profile
    files["user.json"] = _json_bytes(identity if profile is None else profile)
    files["summary.json"] = _json_bytes(summary)  # last: a summary in the bucket means a complete push
    prefix = f"{MODELS_PREFIX}/{user_id}/{session_id}/"
    with _storage_errors(bucket, f"push session {session_id!r} to {bucket.where}"):
        for name, body in files.items():
            _put_verified(bucket, prefix + name, body)
    log.info("pushed session %s to s3://%s/%s (%d files)", session_id, bucket.name, prefix, len(files))
    return PushResult(bucket.name, prefix, [prefix + name for name in files], summary)


def _snapshot(store: SessionStore, session_id: str) -> dict[str, bytes]:
    """The session's files by their path in the session folder, read under its lock."""
    with store.lock(session_id) as paths:
        if not paths.model.is_file():
            raise CloudError(409, f"session {session_id!r} has no trained model yet: train it, evaluate it, "
                             "then push it")
        wanted = [paths.document(name) for name in SESSION_FILES]
        wanted += [paths.model_history, paths.model]
        return {path.relative_to(paths.root).as_posix(): path.read_bytes() for path in wanted
                if path.is_file()}


def _document(files: dict[str, bytes], name: str, session_id: str) -> dict[str, Any]:
    """A JSON object of the snapshot ({} if the file is not there); SessionError if it is not one."""
    try:
        data = json.loads(files.get(name, b"{}"))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SessionError(f"{name} of session {session_id!r} is not a JSON object: fix or delete the file",
                           session_id)
    return data


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def bucket_leaderboard(bucket: Bucket) -> list[Standing]:
    """The pushed sessions' standings from their ``summary.json``, ranked; unreadable summaries are left
    out (and logged)."""
    with _storage_errors(bucket, f"read the leaderboard from {bucket.where}"):
        pages = bucket.client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name,
                                                                        Prefix=f"{MODELS_PREFIX}/")
        keys = [item["Key"] for page in pages for item in page.get("Contents", ())
                if _SUMMARY_KEY.fullmatch(item["Key"])]
        with ThreadPoolExecutor(_READERS) as readers:
            found = list(readers.map(lambda key: _read_standing(bucket, key), keys))
    return rank([standing for standing in found if standing is not None])


def _read_standing(bucket: Bucket, key: str) -> Standing | None:
    from botocore.exceptions import ClientError, FlexibleChecksumError

    try:
        # ChecksumMode: botocore checks what it reads against the SHA-256 stored with the object.
        body = bucket.client.get_object(Bucket=bucket.name, Key=key, ChecksumMode="ENABLED")["Body"].read()
        summary = json.loads(body)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchKey":  # NoSuchKey: removed since the listing
            raise
        return None
    except (FlexibleChecksumError, ValueError) as exc:
        log.warning("leaderboard: skipping s3://%s/%s: %s", bucket.name, key, exc)
        return None
    standing = _standing(summary)
    if standing is None:
        log.warning("leaderboard: skipping s3://%s/%s: not a push summary", bucket.name, key)
    return standing


def _standing(summary: Any) -> Standing | None:
    """A leaderboard row from a ``summary.json``, or ``None`` if it is not one."""
    if not isinstance(summary, dict):
        return None
    score, session_id, user = summary.get("score"), summary.get("session_id"), summary.get("user")
    if not _is_number(score) or not isinstance(session_id, str) or not isinstance(user, str):
        return None
    pushed_at = summary.get("pushed_at")
    return Standing(session_id=session_id, user=user, score=float(score), source="bucket",
                    pushed_at=pushed_at if isinstance(pushed_at, str) else None,
                    profile=_stored_profile(summary.get("user_profile")), **_numbers(summary))


def _stored_profile(value: Any) -> dict[str, Any] | None:
    """A summary's user object if it passes the checks a push makes (anyone who can write to the bucket
    could have changed it), else None: the row then shows the name only."""
    if value is None:
        return None
    try:
        return check_user_profile(value)
    except ParameterError:
        log.warning("leaderboard: a pushed user object is not valid; showing the name only")
        return None
