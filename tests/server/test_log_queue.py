"""The server's log goes through a bounded queue: a stream that blocks never blocks the logging caller."""

from __future__ import annotations

import logging
import threading
import time

from rewards_api.server.log_queue import queued_logging


class Stalled(logging.Handler):
    """A handler whose stream is not read until ``unblocked`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.unblocked = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.unblocked.wait()
        self.lines.append(record.getMessage())


def test_a_stalled_stream_drops_lines_instead_of_blocking_and_says_so() -> None:
    logger = logging.getLogger("uvicorn.error")
    stalled = Stalled()
    logger.addHandler(stalled)
    level, logger.level = logger.level, logging.INFO
    try:
        with queued_logging(max_records=10):
            began = time.monotonic()
            for number in range(200):
                logger.info("line %d", number)
            assert time.monotonic() - began < 1.0  # nothing waited for the stream
            stalled.unblocked.set()
            deadline = time.monotonic() + 5
            while not any("were dropped" in line for line in stalled.lines) and time.monotonic() < deadline:
                logger.info("after")
                time.sleep(0.05)
        assert "line 0" in stalled.lines  # what was queued before the stream stalled is written
        assert any("log lines were dropped: the log stream was not read" in line for line in stalled.lines)
        assert stalled in logger.handlers  # given back after the block
    finally:
        logger.removeHandler(stalled)
        logger.level = level
