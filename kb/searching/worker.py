"""The background indexer of a worker process: drain the change log after writes and on a timer.

Started when a gunicorn worker boots (gunicorn.conf.py) or, under ``flask run``, on the first
request; not at all with ``INDEX_SYNC`` (tests), where each write indexes in its request.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
from collections.abc import Callable

from flask import Flask

from kb import outbox
from kb.extensions import db
from kb.searching.indexer import drain, notify, reconcile, warm_up

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Start the background indexer on the first request at the latest.

    gunicorn.conf.py starts it earlier, when the worker boots, so the change log is drained and
    reconciled before any traffic; ``flask run`` relies on this hook.
    """
    outbox.on_notify(app, notify)

    @app.before_request
    def _start_worker() -> None:
        start_worker(app)


_worker_lock = threading.Lock()


def start_worker(app: Flask) -> None:
    """Start this process's background indexer once (not with ``INDEX_SYNC``, as in tests)."""
    if app.config["INDEX_SYNC"] or "kb.index_worker" in app.extensions:
        return
    with _worker_lock:
        if "kb.index_worker" not in app.extensions:
            worker = IndexWorker(app, float(app.config["INDEX_INTERVAL_S"]))
            app.extensions["kb.index_worker"] = worker
            worker.start()


class IndexWorker(threading.Thread):
    """Drain the outbox in the background: after writes, and every ``interval_s`` seconds."""

    def __init__(self, app: Flask, interval_s: float) -> None:
        super().__init__(name="kb-indexer", daemon=True)
        self.app = app
        self.interval_s = interval_s
        self._wake = threading.Event()

    def wake(self) -> None:
        """Drain soon (a write just committed)."""
        self._wake.set()

    def run(self) -> None:
        self._step(self._start)
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            self._step(drain)

    def _start(self) -> None:
        reconcile()
        drain()
        warm_up()
        # torch and the models leave ~500k long-lived objects that every full collection walks
        # (≈ 320 ms, a pause every few requests): move them out of the collector's sight.
        gc.freeze()
        release_free_memory()

    def _step(self, action: Callable[[], object]) -> None:
        with self.app.app_context():
            try:
                action()
            except Exception:
                # Never let the thread die: the outbox keeps the work for the next round.
                log.exception("background indexing failed; retrying on the next round")
            finally:
                db.session.remove()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc); loading leaves them held otherwise."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to do
        return
    libc.malloc_trim(0)
