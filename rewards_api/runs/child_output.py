"""What processes that run user code write to their stdout and stderr: captured, bounded and escaped.

A training worker, an evaluation child and the reward checks' fork server (with the children it forks)
never write to the server's own stream: their stdout and stderr are a pipe that the server reads with an
:class:`OutputRelay`. Python writes things there that quote the user (a ``SyntaxWarning`` quotes the
user's line; "Exception ignored in ..." quotes an exception's text; ``faulthandler`` names the user's
functions), and a user must not be able to flood the server's log, forge its lines or send terminal
escapes to whoever reads it. The relay logs each line through :mod:`logging` with the process's name in
front, at most :data:`MAX_LINE` characters of it, with every control character escaped (``\\x1b``), and at
most :data:`LINES_PER_MINUTE` lines a minute per process; it counts what it drops and says so.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import unicodedata
from multiprocessing.connection import Connection

__all__ = ["LINES_PER_MINUTE", "MAX_LINE", "OutputRelay", "escaped", "redirect_output"]

log = logging.getLogger(__name__)

MAX_LINE = 300
"""Characters of a line that are logged (the rest is cut, with "...")."""
LINES_PER_MINUTE = 20
"""Lines a minute logged per process; the others are counted and dropped."""
TAIL_BYTES = 8192
"""Bytes of the newest output kept (a crash report: see :attr:`OutputRelay.tail`)."""

_READ = 1 << 16
_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})  # controls, bidi marks, line separators
_WINDOW = 60.0


def escaped(data: bytes, limit: int = MAX_LINE) -> str:
    """``data`` as printable text: invalid UTF-8 and every control or format character escaped, cut to
    ``limit`` characters."""
    text = data.decode("utf-8", errors="backslashreplace")
    shown: list[str] = []
    length = 0
    for char in text:
        if unicodedata.category(char) in _ESCAPED:
            char = ascii(char)[1:-1]  # '\\x1b', '\\u200e', '\\ud800'
        shown.append(char)
        length += len(char)
        if length > limit:
            return "".join(shown)[:limit] + "..."
    return "".join(shown)


def redirect_output(writer: Connection) -> None:
    """In a child process: make its stdout and stderr (file descriptors 1 and 2) the pipe ``writer``."""
    os.dup2(writer.fileno(), 1)
    os.dup2(writer.fileno(), 2)
    writer.close()


class OutputRelay:
    """Reads a child's output from file descriptor ``fd`` (it owns and closes it) on a daemon thread until
    the end of file, and logs it as ``"<name>: <line>"`` within the bounds of the module docstring."""

    def __init__(self, fd: int, name: str, keep: object = None) -> None:
        self.name = name
        self.tail = b""  # the newest TAIL_BYTES bytes read
        self._fd = fd
        self._keep = keep  # an object that owns fd (a Connection, a file) and must live as long
        self._window = time.monotonic()
        self._logged = 0
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"rewards-output-{name}", daemon=True)
        self._thread.start()

    @classmethod
    def of(cls, reader: Connection, name: str) -> OutputRelay:
        """A relay reading the pipe end ``reader`` (closed at end of file)."""
        return cls(reader.fileno(), name, reader)

    def join(self, timeout: float | None = None) -> None:
        """Wait until everything the child wrote has been read (its pipe is closed)."""
        self._thread.join(timeout)

    def _run(self) -> None:
        pending = b""
        try:
            while True:
                try:
                    chunk = os.read(self._fd, _READ)
                except InterruptedError:  # pragma: no cover - retried by Python already
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                self.tail = (self.tail + chunk)[-TAIL_BYTES:]
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > 4 * MAX_LINE:  # a line without end: what is logged of it has come
                    lines.append(pending)
                    pending = b""
                for line in lines:
                    self._line(line)
            if pending:
                self._line(pending)
            self._report_dropped()
        finally:
            if self._keep is not None and hasattr(self._keep, "close"):
                self._keep.close()
            else:
                os.close(self._fd)

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        now = time.monotonic()
        if now - self._window >= _WINDOW:
            self._report_dropped()
            self._window, self._logged = now, 0
        if self._logged >= LINES_PER_MINUTE:
            self._dropped += 1
            return
        self._logged += 1
        log.warning("%s: %s", self.name, escaped(line[:4 * MAX_LINE]))

    def _report_dropped(self) -> None:
        if self._dropped:
            log.warning("%s: %d more lines of its output were dropped (at most %d a minute are logged)",
                        self.name, self._dropped, LINES_PER_MINUTE)
            self._dropped = 0
