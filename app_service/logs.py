"""Logging set-up from Writable.LogLevel, and a rate limit for per-message complaints."""

from __future__ import annotations

import logging
import threading
import time

_LEVELS = {"TRACE": logging.DEBUG, "WARN": logging.WARNING}


def configure(level: str) -> None:
    logging.basicConfig(
        level=_LEVELS.get(level.upper(), getattr(logging, level.upper(), logging.INFO)),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


class RateLimited:
    """Logs at most one line per `interval` seconds, saying how many were held back since.

    A flood of bad messages must not turn into a flood of log lines (or a disk full of them).
    """

    def __init__(self, logger: logging.Logger, interval: float = 5.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last = float("-inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            message += f" ({suppressed} similar messages suppressed)"
        self.logger.warning(message, *args)
