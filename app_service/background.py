"""Chores beside inference (registry, core-metadata, core-data export, actuation) on threads of
their own, so that a slow or absent EdgeX service never holds up inference."""

from __future__ import annotations

import threading


class Background:
    """A daemon thread running `run()`. stop() sets `stopping` and waits for run() to return;
    a subclass whose run() blocks on something else (a queue) wakes it in its own stop()."""

    def __init__(self, name: str) -> None:
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self.stopping.set()
        self._thread.join(timeout)

    def run(self) -> None:
        raise NotImplementedError
