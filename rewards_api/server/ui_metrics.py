"""The original UI's live chart: ``serve --ui-metrics-file PATH`` keeps PATH a copy of the running session's
``training_metrics.json`` (``{"plot_scores": [...], "plot_mean_scores": [...]}``).

The original React front end's training view never asks the server for scores: it polls its own
``src/assets/temp.json`` (served by its vite dev server), so that is the PATH to give.

*The running session* is the owner's session whose training was most recently started or whose live
stream was most recently opened (``POST /train``, ``GET /stream``, the web lab's Train and Watch). When
that training ends the file keeps its last scores until another session is followed. Other users'
sessions never appear in it: the original UI has a single user, the owner (``--no-auth``).

A thread of its own looks at the session's file every :data:`LOOK_INTERVAL` seconds and copies it when it
has changed, atomically (a temporary file in PATH's folder, fsync, rename): the UI never reads a torn file,
and the server's event loop and request threads never do this work. A long history costs more to copy,
so after a copy the thread rests :data:`REST_FACTOR` times what the copy took (at least the interval).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import Request

from ..store import SessionError, SessionStore, atomic_write_bytes
from .auth import Caller

log = logging.getLogger(__name__)

LOOK_INTERVAL = 0.25
"""Seconds between two looks at the followed session's metrics (a ``stat``); the trainer writes them at
most every 0.25 s."""
REST_FACTOR = 20
"""After a copy, the thread rests this many times what it took: copying takes at most ~5 % of a core."""
SERIES = ("plot_scores", "plot_mean_scores")
"""The keys the UI reads (it draws ``plot_scores``; both must be lists for its chart to render)."""


def _not_json(constant: str) -> None:
    """NaN and Infinity: Python reads them, but the UI's ``response.json()`` would fail on the file."""
    raise ValueError(f"{constant} is not JSON")


def ui_metrics(metrics: Any) -> dict[str, list[Any]]:
    """The chart's two series from a ``training_metrics.json`` document (missing or broken ones empty)."""
    document = metrics if isinstance(metrics, dict) else {}
    return {key: value if isinstance(value := document.get(key), list) else [] for key in SERIES}


class UiMetricsFile:
    """Keeps ``path`` a copy of the followed session's training metrics (see the module docstring)."""

    def __init__(self, path: Path, store: SessionStore, interval: float = LOOK_INTERVAL) -> None:
        """``store`` holds the sessions that may be followed (the owner's)."""
        self.path = Path(path)
        self.store = store
        self.interval = interval
        self._session: str | None = None
        self._copied: tuple[Any, ...] | None = None  # what the file now holds: (session, source's stat)
        self._last_error: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rewards-ui-metrics", daemon=True)

    @property
    def session_id(self) -> str | None:
        """The session followed now, if any."""
        return self._session

    def start(self) -> None:
        """Begin following; a PATH that does not exist yet gets an empty chart, so the UI's poll finds it."""
        if not self.path.exists():
            self._write(json.dumps(ui_metrics({})).encode())
        self._thread.start()

    def follow(self, session_id: str) -> None:
        """Follow ``session_id`` from now on. Cheap (an assignment): safe on the event loop."""
        self._session = session_id
        self._wake.set()

    def close(self) -> None:
        """Stop the thread after one last copy (the trainings' final scores, written as they stopped)."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.sync()

    def sync(self) -> bool:
        """Copy the followed session's metrics if they changed since the last copy; whether it copied."""
        session_id = self._session
        if session_id is None:
            return False
        try:
            source = self.store.paths(session_id).training_metrics
            with source.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                # A new inode is a new file (each write is renamed in), whatever the clock's resolution.
                seen = (session_id, stat.st_ino, stat.st_mtime_ns, stat.st_size)
                if seen == self._copied:
                    return False
                raw = handle.read()
        except (OSError, SessionError):  # deleted, or not written yet: keep what the chart shows
            return False
        try:
            document = json.loads(raw, parse_constant=_not_json)
        except ValueError as exc:
            self._report(f"{source} is not JSON the UI can read: {exc}")
            return False
        chart = ui_metrics(document)
        # The trainer's file is already the chart (the common case): copied as it is, not encoded again
        # (encoding 100,000 episodes would hold the interpreter's lock for 50 ms).
        if self._write(raw if chart == document else json.dumps(chart).encode()):
            self._copied = seen
            return True
        return False

    def _write(self, chart: bytes) -> bool:
        try:
            atomic_write_bytes(self.path, chart)
        except OSError as exc:  # the folder went away, the disk is full
            self._report(f"--ui-metrics-file {self.path} could not be written: {exc}")
            return False
        self._last_error = None
        return True

    def _report(self, message: str) -> None:
        """Log a problem once (not four times a second), until a copy succeeds again."""
        if message != self._last_error:
            log.warning("%s", message)
            self._last_error = message

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            started = time.monotonic()
            try:
                copied = self.sync()
            except Exception:  # pragma: no cover - never let the chart take the server down
                log.exception("the UI metrics file could not be updated")
                copied = False
            if copied:
                self._stopping.wait(max(self.interval, REST_FACTOR * (time.monotonic() - started)))


def follow_for_ui(request: Request, caller: Caller, session_id: str) -> None:
    """Make ``session_id`` the one the UI metrics file follows, when the file is on and it is the owner's."""
    mirror: UiMetricsFile | None = getattr(request.app.state, "ui_metrics", None)
    if mirror is not None and caller.is_owner:
        mirror.follow(session_id)
