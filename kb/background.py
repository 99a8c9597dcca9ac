"""Background loops of a worker process: the indexer and the import-job runner share this shape.

A loop runs its step in the app context when woken (a write or an upload just committed) and
every ``interval_s`` seconds; an exception is logged and the loop goes on, since the database
keeps the work (the change log, the queued job) for the next round. Each loop starts once per
process, when the gunicorn worker boots or on the first request, never with ``INDEX_SYNC``
(tests), where the work runs inline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

from kb.extensions import db

log = logging.getLogger(__name__)

Step = Callable[[], object]


class BackgroundLoop(threading.Thread):
    """Run ``first`` once, then ``step`` when woken and every ``interval_s`` seconds."""

    def __init__(
        self, app: Flask, name: str, interval_s: float, step: Step, *, first: Step | None = None
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.app = app
        self.interval_s = interval_s
        self.step = step
        self.first = first or step
        self._wake = threading.Event()

    def wake(self) -> None:
        """Run the step soon (new work was just committed)."""
        self._wake.set()

    def run(self) -> None:
        self._run(self.first)
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._run(self.step)

    def _run(self, action: Step) -> None:
        with self.app.app_context():
            try:
                action()
            except Exception:
                # Never let the thread die: the database keeps the work for the next round.
                log.exception("%s failed; retrying on the next round", self.name)
            finally:
                db.session.remove()


_start_lock = threading.Lock()


def start_once(app: Flask, key: str, make: Callable[[], BackgroundLoop]) -> None:
    """Start the loop kept as ``app.extensions[key]`` once per process (not with INDEX_SYNC)."""
    if app.config["INDEX_SYNC"] or key in app.extensions:
        return
    with _start_lock:
        if key not in app.extensions:
            loop = make()
            app.extensions[key] = loop
            loop.start()
