"""Load what every gunicorn worker needs once, in the master, before it forks the workers.

A forked worker shares the master's memory pages until it writes to them (copy-on-write), so
what the master loads is held once for the host instead of once per worker: the imported
libraries (torch, transformers, sentence-transformers, Whoosh, Flask, SQLAlchemy: ≈ 0.3 GB of
each worker's own memory when it imports them itself), the keyword analyzer's dictionary
(rjieba's, with the domain words), the embedding models with their tokenizers (weights are
memory-mapped files: shared either way) and the vectors of the relevance floor's background
texts, which every worker would otherwise embed at start. gunicorn.conf.py calls ``preload`` from its
``on_starting`` hook; the app itself is still created in each worker after the fork, with its
own database pool, index readers and background threads.

Nothing here may start a thread: a fork copies only the forking thread, so a thread pool
created in the master would be missing in every worker while its state says it exists.
OpenBLAS is told to use one thread before NumPy loads (the web workers use one BLAS thread
anyway: search/vector.py), and torch loads the models on one thread, for which it starts no
pool. Each fork then checks that no other thread exists (gunicorn's own control-socket thread
is stopped by gunicorn just before, and restarted after) and logs a warning if one does.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import logging
import os
import pkgutil
import threading
import time
from pathlib import Path

# gunicorn's own error log: the master has no other (the app configures logging in each worker).
log = logging.getLogger("gunicorn.error")

# glibc malloc heaps per process and fork (mallopt's M_ARENA_MAX), whatever the thread count.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # from glibc's malloc.h
# Package trees imported whole in the master: the app's and the search library's modules.
# Importing them does no I/O (tests/test_import_time.py); the app is created after the fork.
PRELOADED_PACKAGES = ("kb", "search")


def preload() -> None:
    """Import the app's modules and load the analyzer and the models into this process.

    A part that fails is logged and skipped: each worker then loads it itself on first use
    and reports the failure where it always has (its log, ``/readyz``).
    """
    # Read by OpenBLAS when NumPy first loads it (and by SciPy's copy): no BLAS thread pool.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _limit_malloc_arenas()
    started = time.monotonic()
    _import_packages()
    imported_s = time.monotonic() - started
    from search import analysis

    analysis.warm_up()  # rjieba's dictionary with the domain words, OpenCC's tables
    models = _preload_models()
    _check_threads_at_fork()
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # sight, or each worker's first full collection writes to (and so copies) every page of it.
    gc.freeze()
    log.info(
        "Preloaded before fork in %.1f s (imports %.1f s; models: %s); %d frozen objects",
        time.monotonic() - started,
        imported_s,
        models or "none",
        gc.get_freeze_count(),
    )


def _limit_malloc_arenas() -> None:
    """Let glibc's malloc keep at most MALLOC_ARENAS heaps in this process and its forks.

    By default each thread that allocates may get a heap of its own (up to 8 per core), and
    each keeps the memory it freed: a worker's request and search threads held ≈ 20 MB more
    each after 50 searches at 10k campaigns (bench/results/worker_memory_session6.txt). Set
    now, before any thread has allocated, it applies to every thread of every worker. An
    explicit MALLOC_ARENA_MAX in the environment (read by glibc at start) is left alone.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def _import_packages() -> None:
    for package_name in PRELOADED_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            try:
                importlib.import_module(module.name)
            except Exception:  # a module that cannot load here fails in the worker as before
                log.exception("Could not import %s before fork", module.name)


def _preload_models() -> str:
    """Load the configured embedding models; return their names (empty when none is loaded)."""
    from flask import Flask
    from tqdm import tqdm  # type: ignore[import-untyped]  # installed with sentence-transformers

    import kb
    from kb.config import SettingsError, load_config
    from search.embedder import SentenceTransformerEmbedder, preload_embedders
    from search.relevance import background_texts

    # The settings as create_app reads them (same instance folder, so the same default paths).
    app = Flask("kb", instance_path=str(kb.ROOT / "instance"))
    try:
        load_config(app, None)
    except SettingsError:
        log.warning("Settings are invalid: no model preloaded (each worker will say what is wrong)")
        return ""
    spec = str(app.config["EMBEDDING_MODELS"])
    if spec == "fake":  # unit tests' hashed n-grams: nothing to load
        return ""
    models_dir = Path(app.config["MODELS_DIR"] or Path(app.config["DATA_DIR"]) / "models")
    try:
        embedders = preload_embedders(spec, models_dir)
        # The relevance floor embeds its background texts in every worker at start (tens of
        # seconds with e5 on a busy 2-core box): once here, on the master's one torch thread.
        texts = background_texts()
        # sentence-transformers makes a (disabled) tqdm bar per encode, and tqdm's first bar
        # starts a monitor thread that only tunes the refresh of slow bars: none here.
        tqdm.monitor_interval = 0
        for embedder in embedders:
            if isinstance(embedder, SentenceTransformerEmbedder):
                embedder.pin(texts)
    except Exception:
        log.exception("Could not preload the models %s; each worker loads its own", spec)
        return ""
    return ", ".join(embedder.name for embedder in embedders)


_checking_forks = False


def _check_threads_at_fork() -> None:
    """Log a warning whenever this process forks beside another thread (once registered)."""
    global _checking_forks
    if not _checking_forks:
        _checking_forks = True
        # Before-fork handlers run in reverse order of registration: gunicorn's, registered
        # later (when its control socket starts), has stopped its thread when this one looks.
        os.register_at_fork(before=_warn_of_threads)


def _warn_of_threads() -> None:
    threads = threads_other_than_main()
    if threads:
        log.warning("Forking beside other threads, which the child will lack: %s", threads)


def threads_other_than_main() -> list[str]:
    """Return the names of this process's threads besides the calling one (Linux /proc)."""
    own = str(threading.get_native_id())
    names = []
    for task in sorted(os.listdir("/proc/self/task")):
        if task != own:
            try:
                names.append(Path(f"/proc/self/task/{task}/comm").read_text().strip())
            except OSError:  # ended meanwhile
                continue
    return names
