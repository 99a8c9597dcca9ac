"""The background indexer of a worker process: drain the change log after writes and on a timer.

Started when a gunicorn worker boots (gunicorn.conf.py) or, under ``flask run``, on the first
request; not at all with ``INDEX_SYNC`` (tests), where each write indexes in its request.
"""

from __future__ import annotations

import ctypes
import gc

from flask import Flask

from kb import outbox
from kb.background import BackgroundLoop, start_once
from kb.searching import backfill, feed, status
from kb.searching.indexer import drain, notify, reconcile, warm_up


def init_app(app: Flask) -> None:
    """Start the background indexer on the first request at the latest.

    gunicorn.conf.py starts it earlier, when the worker boots, so the indexes are warm and the
    change log reconciled and drained from the start; ``flask run`` relies on this hook.
    """
    outbox.keep_feed_order()
    outbox.on_notify(app, notify)
    outbox.on_indexed(app, feed.is_searchable)
    # Pages that list or search campaigns say 索引中 while this host is behind the database.
    app.add_template_global(status.pending_for_pages, "index_pending")

    @app.before_request
    def _start_worker() -> None:
        start_worker(app)


WORKER = "kb.index_worker"


def start_worker(app: Flask) -> None:
    """Start this process's background indexer once (not with ``INDEX_SYNC``, as in tests)."""
    start_once(
        app,
        WORKER,
        lambda: BackgroundLoop(
            app, "kb-indexer", float(app.config["INDEX_INTERVAL_S"]), run_round, first=_first_pass
        ),
    )


def run_round() -> None:
    """Run one round of the loop: follow the change feed, then fill a newly added model."""
    drain()
    backfill.fill()  # the vectors of a model added to KB_EMBEDDING_MODELS, after the writes


def _first_pass() -> None:
    # What the first searches need comes first: the vectors, models, floor and keyword lengths
    # a request would otherwise load itself beside the reconcile (bench/results/
    # startup_mem_session9.txt). A search already follows the database on its own (sync_vectors,
    # the keyword index's own sync); reconcile and drain then catch the indexes up.
    warm_up()
    reconcile()
    drain()
    # torch and the models leave ~500k long-lived objects that every full collection walks
    # (≈ 320 ms, a pause every few requests): move them out of the collector's sight.
    gc.freeze()
    release_free_memory()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc); loading leaves them held otherwise."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to do
        return
    libc.malloc_trim(0)
