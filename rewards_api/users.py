"""The users of a shared server: names, hashed tokens, and where their sessions live.

The local owner is the user whose token is the server's own (SPEC.md §6); their sessions stay at the root of
the home folder. Everyone else is added with ``rewards-api users add NAME``, which prints a token once; only
its SHA-256 is kept, in ``<home>/.users/users.json`` (mode 0600). Tokens are 256 random bits, so a fast hash
is as safe as a slow one here, and a lookup is a dictionary access. A server notices added and removed users
without a restart: it reloads the file when its modification time changes.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .store import USER_NAME_PATTERN, USER_NAME_RULE, USERS_DIR, atomic_write_json, read_json, user_home

__all__ = ["UserError", "UserInfo", "UserRegistry", "hash_token"]

USERS_FILE = "users.json"


class UserError(ValueError):
    """A user name that is not valid, already taken, or unknown; the message says what to do."""


@dataclass(frozen=True)
class UserInfo:
    name: str
    created: str
    home: Path


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or USER_NAME_PATTERN.fullmatch(name) is None:
        raise UserError(f"user name {name!r} is not valid: {USER_NAME_RULE}")
    return name


class UserRegistry:
    """The users file of a home folder. Thread-safe; :meth:`authenticate` is cheap (one ``stat``)."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home).expanduser().resolve()
        self.path = self.home / USERS_DIR / USERS_FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, str] = {}

    # ----- the CLI's side ---------------------------------------------------------------------------------
    def add(self, name: str) -> str:
        """Add ``name`` and return their new token (shown once: only its hash is kept)."""
        check_user_name(name)
        token = secrets.token_urlsafe(32)
        users = self._load()
        if name in users:
            raise UserError(f"user {name!r} already exists: choose another name, or remove them first")
        users[name] = {"token_sha256": hash_token(token),
                       "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self._save(users)
        user_home(self.home, name).mkdir(parents=True, exist_ok=True)
        return token

    def remove(self, name: str) -> UserInfo:
        """Revoke ``name``'s token. Their sessions are kept, in the returned ``home``."""
        users = self._load()
        if name not in users:
            raise UserError(f"there is no user {name!r}: see `rewards-api users list`")
        entry = users.pop(name)
        self._save(users)
        return UserInfo(name, entry.get("created", ""), user_home(self.home, name))

    def list(self) -> list[UserInfo]:
        return [UserInfo(name, entry.get("created", ""), user_home(self.home, name))
                for name, entry in sorted(self._load().items())]

    # ----- the server's side ------------------------------------------------------------------------------
    def authenticate(self, token: str) -> str | None:
        """The name of the user whose token this is, or ``None``."""
        digest = hash_token(token)  # looked up by hash: nothing secret is compared byte by byte
        with self._lock:
            self._refresh()
            return self._by_hash.get(digest)

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        users = self._load() if stamp is not None else {}
        self._by_hash = {entry["token_sha256"]: name for name, entry in users.items()
                         if isinstance(entry, dict) and isinstance(entry.get("token_sha256"), str)}
        self._stamp = stamp

    # ----- the file ---------------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        users = read_json(self.path, {})
        if not isinstance(users, dict):
            raise UserError(f"{self.path} is not a users file (a JSON object): fix or delete it")
        return users

    def _save(self, users: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, users, file_mode=0o600)
