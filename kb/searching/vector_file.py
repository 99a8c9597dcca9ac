"""One copy of the passage vectors per host: files in KB_DATA_DIR that every worker maps.

Without them each gunicorn worker reads every stored vector from the database into its own
memory at its first search (100k campaigns: ≈ 1.35 M rows, a minute, 1.2 GB per worker). Here
the first worker of a host that finds no file loads from the database as before and writes its
vectors to ``index/vectors/`` (float16 rows and their campaigns per model, for files of at least
search.vector.INT8_MIN_ROWS rows an int8 copy that the scan screens, and ``vectors.json``
naming them with the embedding and history ids they cover); every worker then maps those files
read-only, so the operating system keeps one copy for all, and a worker starts in seconds. It
then follows the database from the ids in ``vectors.json`` as it always did (new embeddings,
trash and restore), keeping what it loads in its own memory beside the file; once that exceeds
RESAVE_FRACTION of the rows, the worker writes a fresh file (workers that start later map it).

The database stays the truth: a file whose ids lie beyond the database's (another or a restored
database), of other models or dimensions, or unreadable, is ignored and rewritten; campaigns
deleted from the database since the file was written are dropped when it is opened.

Each model's file of at least KB_ANN_MIN_ROWS rows also gets an approximate graph (search.ann),
built once per host in a background thread of the process that wrote the file (or, when it died
before finishing, of the next one to start) under its own lock, so writing the vectors and
serving never wait for it. Until it is built, and when it did not reach the recall bar or its
file is damaged, searches scan exactly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, has_app_context

from kb.extensions import db
from kb.models import Campaign, PassageEmbedding
from search import ann
from search.vector import VectorIndex, build_graph_file

if TYPE_CHECKING:
    from kb.searching.indexer import SearchIndexes

logger = logging.getLogger(__name__)

DIRECTORY = "vectors"
POINTER = "vectors.json"
# Write a fresh file when more than this share of the rows (and at least MIN_RESAVE_ROWS) lives
# in one worker's memory rather than in the file: the rest of the memory stays shared.
RESAVE_FRACTION = 0.1
MIN_RESAVE_ROWS = 5_000
# How long a worker waits for another one of the host that is writing the file.
LOCK_TIMEOUT_S = 600.0
FORMAT = 1

# The lock a worker holds from finding no file until it has written one (see restore).
_held: dict[int, IO[str]] = {}
GRAPH_LOCK = ".graph.lock"
# This process's graph builders (wait_for_graphs joins them).
_builders: list[threading.Thread] = []


def directory(indexes: SearchIndexes) -> Path:
    """Return where this host keeps its vector files."""
    return indexes.data_dir / "index" / DIRECTORY


def restore(indexes: SearchIndexes) -> bool:
    """Map this host's vector files into ``indexes``; return False to load from the database.

    Call before the first load. When there is no usable file, the caller becomes the host's
    writer: it holds a lock until ``save_if_due`` has written one, and other workers wait for
    it here instead of loading the database themselves.
    """
    folder = directory(indexes)
    folder.mkdir(parents=True, exist_ok=True)
    if id(indexes) in _held:  # this worker's load failed half-way: it is still the writer
        return False
    if _open_pointer(indexes):
        _build_graphs_in_background(folder)  # a builder that died left one unbuilt
        return True
    if not db.session.scalar(sa.select(sa.func.max(PassageEmbedding.id))):
        return False  # nothing stored yet: nothing to wait for
    handle = open(folder / ".write.lock", "a")  # noqa: SIM115  # held across calls
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:  # a stuck writer: load privately rather than wait
                handle.close()
                return False
            time.sleep(0.2)
    if _open_pointer(indexes):  # written while this worker waited
        _release(handle)
        _build_graphs_in_background(folder)
        return True
    _held[id(indexes)] = handle
    return False


def save_if_due(indexes: SearchIndexes) -> None:
    """Write a fresh file when this worker holds many rows of its own, then map it."""
    vectors = indexes.vectors
    total = sum(len(index) for index in vectors.values())
    unsaved = sum(index.unsaved_rows() for index in vectors.values())
    handle = _held.pop(id(indexes), None)
    if handle is None:
        if total == 0 or unsaved <= max(MIN_RESAVE_ROWS, RESAVE_FRACTION * total):
            return
        handle = open(directory(indexes) / ".write.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return  # another worker is writing one
    try:
        _write(indexes)
    except OSError as error:  # a full disk must not fail the search that synced
        logger.warning("vector file not written: %s", error)
    finally:
        _release(handle)


def _write(indexes: SearchIndexes) -> None:
    folder = directory(indexes)
    token = f"{os.getpid()}-{time.time_ns()}"
    models: dict[str, dict[str, Any]] = {}
    for name, index in indexes.vectors.items():
        prefix = folder / f"{name}-{token}"
        rows = index.save(prefix, map_after=True)
        models[name] = {"prefix": prefix.name, "dim": index.dim, "rows": rows}
    meta = {
        "format": FORMAT,
        "loaded_upto": indexes._loaded_upto,  # the indexer's own marks
        "history_upto": indexes._history_upto,
        "models": models,
    }
    temp = folder / f".{POINTER}.{token}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, folder / POINTER)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    keep = {m["prefix"] for m in models.values()}
    # Processes that map them keep them until they exit. Every file of a prefix is named
    # "<prefix>.<kind>.npy" (rows, blocks, the int8 copy's; temporaries end in .tmp), and a
    # model's name may hold dots, so match on the whole prefix.
    for path in folder.iterdir():
        name = path.name
        if name.startswith(".") or not name.endswith((".npy", ".tmp")) or ".ann." in name:
            continue
        if not any(name.startswith(prefix + ".") for prefix in keep):
            path.unlink(missing_ok=True)
    for path in folder.glob("*.ann.*"):  # graphs of older files, and their builders' temp files
        if not any(f"{prefix}.ann." in path.name for prefix in keep):
            path.unlink(missing_ok=True)
    logger.info("vector file written: %s", {n: m["rows"] for n, m in models.items()})
    _build_graphs_in_background(folder)


def _build_graphs_in_background(folder: Path) -> None:
    """Start building the graphs the pointer's files lack, unless another process is at it."""
    if not has_app_context():  # a file written by a tool, not by the app: no setting to go by
        return
    min_rows = int(current_app.config["ANN_MIN_ROWS"])
    if not _graphs_missing(folder, min_rows):
        return
    builder = threading.Thread(
        target=build_graphs, args=(folder, min_rows), name="vector-graph-build", daemon=True
    )
    _builders[:] = [b for b in _builders if b.is_alive()]
    _builders.append(builder)
    builder.start()


def build_graphs(folder: Path, min_rows: int) -> dict[str, ann.Calibration]:
    """Build the graph of each file the pointer names that lacks one; return what was built.

    One process of the host at a time (a file lock); one that finds it taken returns at once:
    the holder checks the pointer again after each build, so files written meanwhile get theirs.
    """
    handle = open(folder / GRAPH_LOCK, "a")  # noqa: SIM115  # held through the builds
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return {}
    built: dict[str, ann.Calibration] = {}
    tried: set[Path] = set()
    try:
        while missing := [m for m in _graphs_missing(folder, min_rows) if m[1] not in tried]:
            name, prefix, dim = missing[0]
            tried.add(prefix)  # once: a graph that does not open after its build is not redone
            try:
                calibration = build_graph_file(prefix, dim)
            except (OSError, ValueError, RuntimeError) as error:  # the file went away, a full disk
                logger.warning("approximate vector index of %s not built: %r", name, error)
                break
            built[name] = calibration
            logger.info(
                "approximate vector index of %s built in %.0f s: %s (recall@%d %.3f; %.2f ms "
                "against %.2f ms exact)",
                name,
                calibration.build_s,
                "in use" if calibration.used else "not used, searches stay exact",
                ann.CALIBRATION_LIMIT,
                calibration.recall,
                calibration.ann_ms,
                calibration.exact_ms,
            )
    finally:
        _release(handle)
    return built


def _graphs_missing(folder: Path, min_rows: int) -> list[tuple[str, Path, int]]:
    """Return (model, prefix, dim) of the pointer's files of ``min_rows`` rows with no graph."""
    try:
        meta = json.loads((folder / POINTER).read_text(encoding="utf-8"))
        models = {
            name: (m["prefix"], int(m["dim"]), int(m["rows"])) for name, m in meta["models"].items()
        }
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no file yet, or one restore will rewrite
    missing = []
    for name, (prefix_name, dim, rows) in models.items():
        prefix = folder / prefix_name
        if rows < max(1, min_rows) or not (folder / f"{prefix_name}.rows.npy").exists():
            continue
        try:
            ann.open_graph(prefix, rows=rows, dim=dim)  # None: not built, or built and unused
            built = ann.read_calibration(prefix) is not None
        except ann.AnnFileError:
            built = False  # damaged: build it again
        if not built:
            missing.append((name, prefix, dim))
    return missing


def wait_for_graphs(indexes: SearchIndexes, timeout_s: float) -> dict[str, ann.Calibration | None]:
    """Wait for this process's graph builds; return each model's calibration (None: no graph)."""
    deadline = time.monotonic() + timeout_s
    for builder in list(_builders):
        builder.join(max(0.0, deadline - time.monotonic()))
    folder = directory(indexes)
    try:
        models = json.loads((folder / POINTER).read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError):
        return {}
    found: dict[str, ann.Calibration | None] = {}
    for name, meta in models.items():
        try:
            found[name] = ann.read_calibration(folder / meta["prefix"])
        except ann.AnnFileError:
            found[name] = None
    return found


def _open_pointer(indexes: SearchIndexes) -> bool:
    """Map the files the pointer names if they fit these models and this database."""
    folder = directory(indexes)
    try:
        meta = json.loads((folder / POINTER).read_text(encoding="utf-8"))
        models = meta["models"]
        loaded_upto, history_upto = int(meta["loaded_upto"]), int(meta["history_upto"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("vector file pointer unreadable, loading from the database: %r", error)
        return False
    wanted = {name: index.dim for name, index in indexes.vectors.items()}
    if (
        meta.get("format") != FORMAT
        or {name: models.get(name, {}).get("dim") for name in wanted} != wanted
    ):
        return False
    newest = db.session.scalar(sa.select(sa.func.max(PassageEmbedding.id))) or 0
    if newest < loaded_upto:
        return False  # another database, or an older copy of this one
    try:
        for name, index in indexes.vectors.items():
            index.open_file(folder / models[name]["prefix"])
    except (OSError, ValueError) as error:
        logger.warning("vector file unusable, loading from the database: %r", error)
        for name, index in indexes.vectors.items():
            indexes.vectors[name] = VectorIndex(name, index.dim)
        return False
    live = set(db.session.scalars(sa.select(Campaign.id).where(Campaign.deleted_at.is_(None))))
    for index in indexes.vectors.values():
        gone = index.campaigns() - live
        if gone:
            index.remove(gone)
    indexes._loaded_upto = loaded_upto  # the marks the file covers
    indexes._history_upto = history_upto
    return True


def _release(handle: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
