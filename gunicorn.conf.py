"""gunicorn settings for Campaign KB: ``gunicorn -c gunicorn.conf.py 'kb:create_app()'``.

Every value here can be overridden on the command line (``--workers 4``). The app is created in
each worker after the fork (no ``preload_app``): each worker opens its own database pool and
index readers, and starts its indexer thread at boot, which loads what searches need (vectors,
models, the keyword index's lengths), then reconciles and drains the change log, from the start
rather than on the first request.

What every worker needs and never changes is loaded once, in the master, before the fork
(``on_starting``: kb/prefork.py): the libraries (torch, transformers, Flask, ...), the
keyword analyzer's dictionary and the embedding models. The workers share those pages
copy-on-write instead of each holding its own ≈ 0.45 GB. The master starts no thread for it (a
fork must not cross one; each fork checks). The big read-only data is shared through files in
KB_DATA_DIR that each worker maps (one copy in the page cache for the host): the passage
vectors (kb/searching/vector_file.py) and the model weights (e5's safetensors, USE's .npy
arrays: search/embedder.py). Code loaded in the master is not reloaded by a HUP: restart
gunicorn after an upgrade.
"""

from __future__ import annotations

import os
from typing import Any

bind = os.environ.get("KB_BIND", "127.0.0.1:8000")
# Each worker holds ≈ 0.1 GB of its own beside what it shares with the master and the mapped
# weights and vectors (bench/results/worker_memory_session6.txt): two workers on two cores serve
# well; threads overlap database and index waits (torch runs one thread per worker,
# KB_TORCH_THREADS).
workers = int(os.environ.get("KB_WORKERS", min(2, os.cpu_count() or 1)))
threads = int(os.environ.get("KB_THREADS", "4"))
# gthread, answering gunicorn's own errors (414, 431, 400, 500) as the API's JSON under /api/.
worker_class = "kb.ops.gunicorn_worker.JsonErrorWorker"
preload_app = False  # see the docstring: libraries and models are loaded by on_starting
# What a request may be. gunicorn refuses the first three before the app sees the request
# (JSON under /api/); the app refuses the rest with its own 413/422 (README, "Limits").
#   request line (method, path, query) <= 8190 bytes: 414
#   header fields <= 100, each <= 8190 bytes: 431
#   body <= KB_MAX_CONTENT_LENGTH (16 MiB): 413; a record <= 1,000,000 characters: 422
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# The worker timeout is the last resort against a stuck worker, never a request's budget: a
# worker killed on it answers nothing at all (the connection is cut; a proxy says 502), so no
# request may come near it. Within the limits above every request ends in seconds: search and
# pages in milliseconds, a draft's analysis and a 16 MiB body in a few seconds; imports run as
# background jobs (202 at once, kb.transfer.jobs); exports stream row by row; files are read
# with bounded readers (ingest/limits.py). 60 s leaves a tenfold margin on this 2-core box.
timeout = 60
graceful_timeout = 30
keepalive = 5
# gunicorn trusts no X-Forwarded-* header itself: the app believes exactly KB_TRUSTED_PROXIES
# proxies (werkzeug's ProxyFix), whatever address they connect from.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}

if os.environ.get("KB_LOG_FORMAT") == "json":
    # gunicorn's own error and access lines as JSON too (the app's: kb/logs.py), on stderr/stdout.
    logconfig_dict: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "kb.logs.JsonFormatter"}},
        "handlers": {
            "error": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        # gunicorn's defaults name a root handler of their own; the app replaces this one.
        "root": {"level": "INFO", "handlers": ["error"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }


def on_starting(server: Any) -> None:
    """Load the libraries, the analyzer's dictionary and the models once, for every worker."""
    from kb.prefork import preload

    preload()


def post_worker_init(worker: Any) -> None:
    """Start the worker's indexer and import runner at boot, before traffic arrives."""
    from kb.searching.worker import start_worker
    from kb.transfer import jobs

    start_worker(worker.wsgi)
    # Import jobs queued anywhere (or left by a worker that died) run without waiting for a request.
    jobs.start_worker(worker.wsgi)
