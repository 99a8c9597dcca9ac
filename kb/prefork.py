"""Load what every gunicorn worker needs once, in the master, before it forks the workers.

A forked worker shares the master's memory pages until it writes to them (copy-on-write), so
what the master loads is held once for the host instead of once per worker: the imported
libraries (torch, transformers, sentence-transformers, Whoosh, Flask, SQLAlchemy: ≈ 0.3 GB of
each worker's own memory when it imports them itself), the keyword analyzer's dictionary
(rjieba's, with the domain words), the embedding models with their tokenizers (weights are
memory-mapped files: shared either way) and the vectors of the relevance floor's background
and contrast texts, which every worker would otherwise embed at start (kept in the models
directory, so a restart reads them instead of encoding them: ≈ 4 s of e5 on this box). gunicorn.conf.py calls ``preload`` from its
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
import hashlib
import importlib
import logging
import os
import pkgutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search.embedder import SentenceTransformerEmbedder, Vectors

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
    analyzer_s = time.monotonic() - started - imported_s
    models = _preload_models()
    _check_threads_at_fork()
    # Everything loaded so far lives as long as the process: keep it out of the collector's
    # sight, or each worker's first full collection writes to (and so copies) every page of it.
    gc.freeze()
    log.info(
        "Preloaded before fork in %.1f s (imports %.1f s, analyzer %.1f s, models %s); "
        "%d frozen objects",
        time.monotonic() - started,
        imported_s,
        analyzer_s,
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
    from search.relevance import contrast_texts

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
        started = time.monotonic()
        embedders = preload_embedders(spec, models_dir)
        loaded_s = time.monotonic() - started
        # The relevance floor embeds its background texts and the neighbouring topics of its
        # contrast test in every worker at its first search (seconds with e5 on a busy 2-core
        # box): once here, on the master's one torch thread, and kept in the models directory
        # for the next start.
        texts = contrast_texts()
        # sentence-transformers makes a (disabled) tqdm bar per encode, and tqdm's first bar
        # starts a monitor thread that only tunes the refresh of slow bars: none here.
        tqdm.monitor_interval = 0
        pinned = [
            _pin(embedder, texts, models_dir / PINNED_DIR)
            for embedder in embedders
            if isinstance(embedder, SentenceTransformerEmbedder)
        ]
    except Exception:
        log.exception("Could not preload the models %s; each worker loads its own", spec)
        return ""
    return (
        ", ".join(embedder.name for embedder in embedders)
        + f" loaded in {loaded_s:.1f} s; {len(texts)} floor texts "
        + ", ".join(pinned)
    )


# Where the master keeps the vectors of the texts it pins, in the models directory.
PINNED_DIR = "pinned"
# A text each model encodes at start: its vector (as query and as passage) names the model,
# its precision and its prompts in the key of the kept vectors, so any change re-encodes.
_PROBE = "活动复盘 campaign review"


def _pin(embedder: SentenceTransformerEmbedder, texts: list[str], folder: Path) -> str:
    """Pin ``texts`` in ``embedder``, from the vectors kept in ``folder`` by an earlier start.

    Returns how it went, for the log: "<name> read|encoded in <s> s".
    """
    import numpy as np  # not at the top: OpenBLAS reads its thread count when NumPy loads

    started = time.monotonic()
    key = hashlib.sha256()
    for part in (embedder.name, str(embedder.dim), *texts):
        key.update(part.encode("utf-8") + b"\0")
    for probe in (embedder.encode_queries([_PROBE]), embedder.encode_passages([_PROBE])):
        # Rounded: the same model always gives the same key; another one never does.
        key.update(np.round(probe.astype(np.float64), 3).tobytes())
    path = folder / f"{embedder.name}-{key.hexdigest()[:24]}.npz"
    known = _read_pinned(path, len(texts), embedder.dim)
    vectors = embedder.pin(texts, known)
    if known is None:
        _write_pinned(path, vectors)
    how = "read" if known is not None else "encoded"
    return f"{embedder.name} {how} in {time.monotonic() - started:.1f} s"


def _read_pinned(path: Path, rows: int, dim: int) -> tuple[Vectors, Vectors] | None:
    """Return the (query, passage) vectors kept at ``path``; None when missing or unfit."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as kept:
            queries, passages = kept["queries"], kept["passages"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as error:
        log.warning("Kept floor vectors %s unreadable (%r): encoding them again", path, error)
        return None
    for array in (queries, passages):
        if array.shape != (rows, dim) or array.dtype != np.float32 or not np.isfinite(array).all():
            log.warning("Kept floor vectors %s do not fit: encoding them again", path)
            return None
    return queries, passages


def _write_pinned(path: Path, vectors: tuple[Vectors, Vectors]) -> None:
    """Keep the vectors at ``path`` (replaced atomically); drop the model's older files."""
    import numpy as np

    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, "wb") as handle:
            np.savez(handle, queries=vectors[0], passages=vectors[1])
        os.replace(temp, path)
        model = path.name.rsplit("-", 1)[0]
        for old in path.parent.glob(f"{model}-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as error:  # a read-only models directory: encoded again at the next start
        log.warning("Could not keep the floor vectors in %s: %r", path.parent, error)
    finally:
        temp.unlink(missing_ok=True)


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
