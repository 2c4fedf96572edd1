"""Server settings in one place: embedded defaults, overridden by ``REWARDS_*`` variables and CLI flags."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .store import default_home

DEFAULT_CORS_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173")
"""The original React front end's development server."""
TOKEN_FILE = "server_token"
"""Where a generated token is kept, in the home folder, readable by its owner only."""


class Settings(BaseSettings):
    """How the server runs. ``REWARDS_HOME``, ``REWARDS_TOKEN``, ``REWARDS_PORT``, ... set the fields.

    ``max_jobs`` trainings run at once and ``max_queued`` more may wait; a user other than the owner may
    have ``max_user_jobs`` trainings queued or running; request bodies are at most ``max_body_bytes``.
    """

    model_config = SettingsConfigDict(env_prefix="REWARDS_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    token: str | None = None
    no_auth: bool = False
    max_jobs: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    max_queued: int = Field(64, ge=0, le=10_000)
    max_user_jobs: int = Field(2, ge=1, le=64)
    # A reward function is a few kilobytes: a megabyte is generous.
    max_body_bytes: int = Field(1_000_000, ge=1_000, le=100_000_000)
    cors_origins: list[str] = Field(default_factory=lambda: list(DEFAULT_CORS_ORIGINS))

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 8:
            raise ValueError("a token must be at least 8 characters long")
        return value

    def check(self) -> None:
        """Refuse combinations that would be unsafe: ``--no-auth`` anywhere but on loopback."""
        if self.no_auth and not is_loopback(self.host):
            raise ValueError(
                f"--no-auth is only allowed on a loopback host (127.0.0.1, ::1, localhost), not "
                f"{self.host!r}: anyone who can reach the server could run code on this machine"
            )

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
