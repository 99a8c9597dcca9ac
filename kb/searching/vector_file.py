"""One copy of the passage vectors per host: files in KB_DATA_DIR that every worker maps.

Without them each gunicorn worker reads every stored vector from the database into its own
memory at its first search (100k campaigns: ≈ 1.35 M rows, a minute, 1.2 GB per worker). Here
the first worker of a host that finds no file loads from the database as before and writes its
vectors to ``index/vectors/`` (float16 rows and their campaigns per model, and ``vectors.json``
naming them with the embedding and history ids they cover); every worker then maps those files
read-only, so the operating system keeps one copy for all, and a worker starts in seconds. It
then follows the database from the ids in ``vectors.json`` as it always did (new embeddings,
trash and restore), keeping what it loads in its own memory beside the file; once that exceeds
RESAVE_FRACTION of the rows, the worker writes a fresh file (workers that start later map it).

The database stays the truth: a file whose ids lie beyond the database's (another or a restored
database), of other models or dimensions, or unreadable, is ignored and rewritten; campaigns
deleted from the database since the file was written are dropped when it is opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from kb.extensions import db
from kb.models import Campaign, PassageEmbedding
from search.vector import VectorIndex

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
    for path in folder.glob("*.npy"):  # processes that map them keep them until they exit
        stem = path.name.removesuffix(".npy").removesuffix(".rows").removesuffix(".blocks")
        if stem not in keep:  # (a model's name may hold dots)
            path.unlink(missing_ok=True)
    logger.info("vector file written: %s", {n: m["rows"] for n, m in models.items()})


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
