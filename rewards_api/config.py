"""Server settings in one place: embedded defaults, overridden by ``REWARDS_*`` variables and CLI flags."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .params import ParameterError
from .store import default_home

DEFAULT_CORS_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000", "http://localhost:5173",
                        "http://127.0.0.1:5173")
"""The original React front end's development server: its vite.config.js says port 3000, vite's own default
is 5173. Always allowed; ``--cors-origin`` and ``REWARDS_CORS_ORIGINS`` add to them."""
TOKEN_FILE = "server_token"
"""Where a generated token is kept, in the home folder, readable by its owner only."""
S3_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
"""An S3 bucket name (AWS's rules, which S3-compatible servers follow); no "..", not an IP address."""
S3_REGION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""A region: AWS's (eu-west-3) or an S3-compatible server's own name (``auto``, ``garage``...)."""


def default_max_jobs() -> int:
    """Trainings at once by default: twice the cores. A training's worker starts in a fraction of a second
    (rewards_api.runs.processes) and its tiny network runs on one thread, so a third training on two cores
    starts at once and shares them, rather than waiting behind two long ones; the workers run niced, so
    the server's answers come first."""
    return 2 * (os.cpu_count() or 1)


class Settings(BaseSettings):
    """How the server runs. ``REWARDS_HOME``, ``REWARDS_TOKEN``, ``REWARDS_PORT``, ... set the fields.

    ``max_jobs`` trainings run at once and ``max_queued`` more may wait; a user other than the owner may
    have ``max_user_jobs`` trainings queued or running; request bodies are at most ``max_body_bytes``.
    ``s3_bucket`` (at ``s3_endpoint_url``, in ``s3_region``) is where ``/push_model`` pushes models.
    """

    model_config = SettingsConfigDict(env_prefix="REWARDS_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    token: str | None = None
    no_auth: bool = False
    max_jobs: int = Field(default_factory=lambda: default_max_jobs(), ge=1, le=64)
    max_queued: int = Field(64, ge=0, le=10_000)
    max_user_jobs: int = Field(2, ge=1, le=64)
    # Start the training workers' fork server (rewards_api.runs.processes: ~3 s of CPU loading PyTorch)
    # with the server, so that the first Train starts at once; off (REWARDS_PRELOAD_WORKERS=0), it starts
    # at the first training or evaluation: for a machine that starts many short-lived servers (the tests).
    preload_workers: bool = True
    # A reward function is a few kilobytes: a megabyte is generous.
    max_body_bytes: int = Field(1_000_000, ge=1_000, le=100_000_000)
    # POST /api/v1/import takes a whole exported session (model and resume checkpoint): its own bound.
    max_upload_bytes: int = Field(64_000_000, ge=1_000, le=2_000_000_000)
    # Browser origins allowed besides DEFAULT_CORS_ORIGINS (see allowed_origins); REWARDS_CORS_ORIGINS is
    # a comma-separated or JSON list, and --cors-origin replaces it as every flag replaces its variable.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The web lab at / (rewards_api.ui); off, the server is the API alone (one NiceGUI mount per process).
    web_ui: bool = True
    # S3-compatible storage for /push_model and the shared leaderboard; credentials come only from the
    # standard AWS chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, an instance role...), never from these settings.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # The original UI's live chart: a copy of the running session's training metrics kept at this path
    # (its src/assets/temp.json); off by default. See rewards_api.server.ui_metrics.
    ui_metrics_file: Path | None = None

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 8:
            raise ValueError("a token must be at least 8 characters long")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        """``REWARDS_CORS_ORIGINS``: ``http://a:8080,http://b:8080`` or a JSON list of the same."""
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("["):
                return [part for part in text.split(",") if part.strip()]
            try:
                return json.loads(text)
            except ValueError:
                raise ParameterError("cors_origins", value, "give origins separated by commas, or a JSON "
                                     'list such as ["http://localhost:3000"]') from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        return [browser_origin(origin) for origin in value]

    @property
    def allowed_origins(self) -> list[str]:
        """Every origin a browser may call the API from: the defaults, then the configured ones."""
        return list(dict.fromkeys([*DEFAULT_CORS_ORIGINS, *self.cors_origins]))

    @field_validator("s3_bucket", "s3_endpoint_url", "s3_region", "ui_metrics_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``REWARDS_S3_BUCKET=`` (set but empty) means no bucket, like an unset variable."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("s3_bucket")
    @classmethod
    def _check_s3_bucket(cls, value: str | None) -> str | None:
        if value is not None and (S3_BUCKET_PATTERN.fullmatch(value) is None or ".." in value
                                  or re.fullmatch(r"[0-9.]+", value)):
            raise ParameterError("s3_bucket", value, "use an S3 bucket name: 3-63 lower-case letters, "
                                 "digits, '.' or '-', starting and ending with a letter or digit "
                                 "(--s3-bucket NAME or REWARDS_S3_BUCKET)")
        return value

    @field_validator("ui_metrics_file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """The server may be started from anywhere: messages and the copy use the full path."""
        return None if value is None else value.expanduser().absolute()

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_s3_endpoint_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if "@" in parts.netloc:  # a secret in a URL ends up in logs (never shown here): the AWS chain has it
            raise ParameterError("s3_endpoint_url", f"{parts.scheme}://***@{parts.netloc.rpartition('@')[2]}",
                                 "leave the credentials out of the URL: give them as AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the server's environment")
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:  # not a number, or out of range
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.query \
                or parts.fragment:
            raise ParameterError("s3_endpoint_url", value, "use the storage's URL, e.g. "
                                 "http://127.0.0.1:9000 or https://s3.example.com (--s3-endpoint-url URL or "
                                 "REWARDS_S3_ENDPOINT_URL)")
        return value.strip().rstrip("/")

    @field_validator("s3_region")
    @classmethod
    def _check_s3_region(cls, value: str | None) -> str | None:
        if value is not None and S3_REGION_PATTERN.fullmatch(value) is None:
            raise ParameterError("s3_region", value, "use a region name such as us-east-1 or eu-west-3 "
                                 "(--s3-region or REWARDS_S3_REGION)")
        return value

    def check(self) -> None:
        """Refuse combinations that would be unsafe: ``--no-auth`` anywhere but on loopback."""
        if self.no_auth and not is_loopback(self.host):
            raise ValueError(
                f"--no-auth is only allowed on a loopback host (127.0.0.1, ::1, localhost), not "
                f"{self.host!r}: anyone who can reach the server could run code on this machine"
            )

    def check_ui_metrics_file(self) -> None:
        """ValueError unless ``ui_metrics_file`` (if set) is a file path in a folder that exists and can be
        written: the copy is renamed in from that folder, so it must take new files."""
        path = self.ui_metrics_file
        if path is None:
            return
        option = f"--ui-metrics-file {path}"
        if path.is_dir():
            raise ValueError(f"{option} is a folder: give the path of a file, such as the original UI's "
                             "src/assets/temp.json")
        if not path.parent.is_dir():
            raise ValueError(f"{option}: the folder {path.parent} does not exist; create it, or give the "
                             "path of the original UI's src/assets/temp.json")
        try:
            # As the copy is made: a hidden temporary file beside PATH (removed on close).
            tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp").close()
        except OSError as exc:
            raise ValueError(f"{option}: the folder {path.parent} cannot be written ({exc.strerror}); make "
                             "it writable, or choose a file in a folder this user can write") from None

    def check_home(self) -> None:
        """ValueError unless the home folder exists (or can be made) and files can be written in it."""
        if self.home.exists() and not self.home.is_dir():
            raise ValueError(f"the home folder {self.home} is a file: choose a folder with --home or "
                             "REWARDS_HOME")
        probe = self.home / f".write-probe-{secrets.token_hex(4)}"
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"the home folder {self.home} cannot be written ({exc.strerror}): choose a "
                             "writable folder with --home or REWARDS_HOME") from None


def browser_origin(origin: str) -> str:
    """``origin`` as a browser sends it in ``Origin`` (``scheme://host[:port]``, no trailing slash), or a
    ParameterError that says how to write one. ``*`` is refused: it would let every web page use the API."""
    text = origin.strip().rstrip("/")
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.path \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ParameterError("cors_origin", origin, "give a browser origin as scheme://host[:port], e.g. "
                             "http://localhost:3000 (--cors-origin URL, repeatable, or "
                             "REWARDS_CORS_ORIGINS); '*' is not allowed: any web page could then drive "
                             "this server")
    return text


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_token(settings: Settings) -> str:
    """The token clients must send: the configured one, else the one kept in the home folder (made on
    first start, mode 0600)."""
    if settings.token:
        return settings.token
    path = settings.home / TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    settings.home.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{TOKEN_FILE}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private from the start
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token)
    os.replace(temporary, path)
    return token
