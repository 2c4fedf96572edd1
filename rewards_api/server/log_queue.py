"""The server's log lines are written by a thread of their own, never by the event loop.

A log handler writes to the server's stream synchronously: when that stream is a pipe nobody drains (a
terminal held with Ctrl-S, a supervisor that stopped reading), the write blocks, and with it the event
loop, so every request of every user waits, ``GET /health`` included; a user who makes the server log a
lot (errors quoting their code or their data) fills a 64 KB pipe in moments. :func:`queued_logging` puts a
bounded queue between the loggers and their handlers: the event loop only enqueues, a listener thread
writes, and when the queue is full lines are dropped (and counted in the next line written) instead of
blocking anyone.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
import sys
import threading
from collections.abc import Iterator

MAX_QUEUED_RECORDS = 10_000
"""Log records that may wait for the stream; beyond, records are dropped."""
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
"""The loggers whose handlers are moved behind the queue ("" is the root logger)."""


class _Dropped:
    """How many records were dropped since the writer last said so (shared by every queue handler)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1

    def take(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
        return count


Queued = queue.Queue[tuple[str, logging.LogRecord] | None]


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """Enqueue ``(logger name, record)`` as it is (same process: no need to flatten it; uvicorn's access
    formatter needs ``record.args``); drop it when the queue is full."""

    def __init__(self, records: Queued, logger_name: str, dropped: _Dropped) -> None:
        super().__init__(records)
        self.logger_name = logger_name
        self.dropped = dropped

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait((self.logger_name, record))
        except queue.Full:
            self.dropped.add()


def _write(records: Queued, routes: dict[str, list[logging.Handler]], dropped: _Dropped) -> None:
    """The writer thread: each record to the handlers its logger had, saying first what was dropped."""
    while (item := records.get()) is not None:
        name, record = item
        lost = dropped.take()
        for handler in routes.get(name, []):
            if lost:
                handler.handle(logging.LogRecord(
                    record.name, logging.WARNING, __file__, 0,
                    "%d log lines were dropped: the log stream was not read", (lost,), None))
            if record.levelno >= handler.level:
                handler.handle(record)


@contextlib.contextmanager
def queued_logging(max_records: int = MAX_QUEUED_RECORDS) -> Iterator[None]:
    """Within the block, :data:`LOGGERS` log through a bounded queue and a writer thread (see the module
    docstring). Call it once logging is configured (uvicorn configures it when its Config is made). A root
    logger without handlers gets one to stderr, as Python's last-resort handler would have written."""
    records: Queued = queue.Queue(max_records)
    routes: dict[str, list[logging.Handler]] = {}
    swapped: list[tuple[logging.Logger, DroppingQueueHandler, list[logging.Handler]]] = []
    dropped = _Dropped()
    for name in LOGGERS:
        logger = logging.getLogger(name)
        original = list(logger.handlers)
        handlers = original
        if not handlers and name == "":
            fallback = logging.StreamHandler(sys.stderr)
            fallback.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
            fallback.setLevel(logging.WARNING)
            handlers = [fallback]
        if not handlers:
            continue
        entry = DroppingQueueHandler(records, name, dropped)
        routes[name] = handlers
        for handler in original:
            logger.removeHandler(handler)
        logger.addHandler(entry)
        swapped.append((logger, entry, original))
    writer = threading.Thread(target=_write, args=(records, routes, dropped), name="rewards-log-writer",
                              daemon=True)
    writer.start()
    try:
        yield
    finally:
        for logger, entry, original in swapped:
            logger.removeHandler(entry)
            for handler in original:
                logger.addHandler(handler)
        with contextlib.suppress(queue.Full):
            records.put(None, timeout=1.0)
        writer.join(5.0)  # a stream that is never read keeps it blocked: it is a daemon, left behind
