"""Stage 5, storage: the versioned on-disk index, its atomic switch, writes, and searching it."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import logging
import os
import re
import shutil
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from whoosh.codec import whoosh3
from whoosh.filedb.filestore import FileStorage

from search import analysis
from search.documents import CampaignText
from search.keyword.columns import OpenSearcher, SegmentArrays, Snapshot
from search.keyword.fields import FACET_FIELDS, make_schema, metric_field, to_fields
from search.keyword.filters import MetricRange, SearchFilters
from search.keyword.scoring import KeywordHit, KeywordResult, query_terms, rank, snippet
from search.keyword.writing import MAX_WORKERS, IndexBuild

logger = logging.getLogger(__name__)

POINTER = "CURRENT"
_INDEX_DIR = re.compile(r"[0-9a-f]{16}-(\d+)")
# Another writer (a second worker, the rebuild's old index) holds the lock for at most a commit
# with a merge: about a second at 100k documents. Whoosh's default, 0, fails at once.
WRITE_TIMEOUT_S = 15.0
# Documents per segment of a rebuild: bounds its memory (≈ 60 MB of postings per 10,000
# campaigns of 3 KB) and the segments a query visits (10 at 100,000 campaigns).
BUILD_BATCH_DOCS = 10_000
# A build split between workers makes segments of at least this many documents.
MIN_PARALLEL_SEGMENT = 1_000
# A rebuild's progress, for other processes (GET /api/v1/index/status): rewritten at most
# every this many documents.
BUILDING = "BUILDING"
_BUILDING_EVERY = 1_000


@dataclass(frozen=True, slots=True)
class BuildProgress:
    """How far a running rebuild is: documents added, of how many (if known), since when."""

    added: int
    total: int | None
    started_at: float  # Unix time


class _ProgressFile:
    """Pass a rebuild's progress on, and keep it in a small file other processes can read."""

    def __init__(
        self,
        path: Path,
        name: str,
        total: int | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self._path, self._name, self._total, self._progress = path, name, total, progress
        self._started_at = time.time()
        self._written = -_BUILDING_EVERY
        self.update(0)

    def update(self, added: int) -> None:
        if added - self._written >= _BUILDING_EVERY or added == self._total:
            self._written = added
            temp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            state = {"dir": self._name, "added": added, "total": self._total}
            temp.write_text(json.dumps({**state, "started_at": self._started_at}), "utf-8")
            os.replace(temp, self._path)
        if self._progress is not None and added:
            self._progress(added)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()


class IndexUnavailableError(RuntimeError):
    """The keyword index cannot be written: it is missing or unreadable; rebuild it."""


class IndexBusyError(RuntimeError):
    """Another rebuild of the same index directory is running."""


class KeywordIndex:
    """A versioned Whoosh index of campaigns under ``directory``; safe to share across threads.

    Several processes may open the same directory (one object per worker): each call first
    checks CURRENT (one stat) and the index generation (one listing), so every object sees the
    others' commits and rebuilds at its next call. Calls on one object are serialized by a lock:
    the open searcher's files are not thread-safe, and pure-Python Whoosh gains nothing from
    threads. Writers wait up to WRITE_TIMEOUT_S for Whoosh's lock. Documents upserted into the
    old index while a rebuild runs are not in the new one: reconcile ``versions()`` afterwards.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.RLock()
        # Never equal to a real stat or to None (no pointer): the first _sync opens.
        self._pointer_stat: tuple[int, int, int] | None = (-1, -1, -1)
        self._name: str | None = None
        self._index: Any = None
        self._snapshot: Snapshot | None = None
        # Without mmap the open searcher holds the segment files open: close them when this
        # object is collected unclosed too. A weakref callback runs before the files' own
        # finalizers (which would warn), and it keeps the holder, not this object, alive.
        self._open = OpenSearcher()
        weakref.finalize(self, self._open.close)
        self._stale = True
        self._segments = SegmentArrays()
        self.problem: str | None = None
        with self._lock:
            self._sync()

    # State

    @property
    def is_usable(self) -> bool:
        """Return whether an index is open (possibly stale)."""
        with self._lock:
            self._sync()
            return self._snapshot is not None

    @property
    def is_stale(self) -> bool:
        """Return whether the index must be rebuilt: missing, unreadable or another analyzer."""
        with self._lock:
            self._sync()
            return self._stale

    def close(self) -> None:
        """Release the open index files."""
        with self._lock:
            self._close()
            self._pointer_stat = (-1, -1, -1)

    def __enter__(self) -> KeywordIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close(self) -> None:
        self._open.close()
        self._segments.postings.close()  # unmaps the closed segments' files
        self._snapshot = self._index = self._name = None

    def _sync(self) -> None:
        """Follow CURRENT if it changed (one stat), else refresh the searcher to the last commit."""
        try:
            st = (self.directory / POINTER).stat()
            pointer_stat: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            pointer_stat = None
        if pointer_stat != self._pointer_stat:
            self._pointer_stat = pointer_stat
            self._open_pointer()
            return
        if self._snapshot is None:
            return
        try:
            if self._snapshot.searcher.up_to_date():  # one directory listing
                return
            # Not Searcher.refresh(): it reuses the reader of a segment whose deletions changed,
            # so replaced and deleted documents come back (whoosh-reloaded 2.7.5).
            searcher = self._index.searcher()
        except Exception as error:  # an unreadable index must not stop the app
            self._fail(f"reopen failed: {error!r}")
            return
        # Nothing else holds the old searcher: every use runs under self._lock.
        self._open.close()
        self._snapshot = Snapshot(searcher, self._segments)
        self._open.searcher = searcher

    def _open_pointer(self) -> None:
        """Open the index CURRENT names, recording why not when it cannot be opened."""
        self._close()
        self._stale = True
        try:
            name = (self.directory / POINTER).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            self.problem = f"no index pointer: {error}"
            return
        if not _INDEX_DIR.fullmatch(name):
            self.problem = f"corrupt index pointer {name[:40]!r}"
            return
        # Whoosh leaves a file open when a TOC fails to parse; its ResourceWarning is noise here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                index = _storage(self.directory / name).open_index()
                searcher = index.searcher()
            except Exception as error:  # corrupt indexes raise all kinds of errors
                self._fail(f"cannot open index {name}: {error!r}")
                del error
                gc.collect()  # collect the leaked file now, while the warning is ignored
                return
        self._name, self._index, self._snapshot = name, index, Snapshot(searcher, self._segments)
        self._open.searcher = searcher
        self._stale = not name.startswith(analysis.analyzer_fingerprint()[:16])
        self.problem = "built with another analyzer" if self._stale else None

    def _fail(self, problem: str) -> None:
        logger.warning("keyword index under %s unusable: %s", self.directory, problem)
        with contextlib.suppress(Exception):
            self._close()
        self._stale = True
        self.problem = problem

    # Writing

    def rebuild(
        self,
        docs: Iterable[CampaignText],
        *,
        progress: Callable[[int], None] | None = None,
        total: int | None = None,
        workers: int | None = None,
        segment_docs: int = BUILD_BATCH_DOCS,
    ) -> int:
        """Index ``docs`` into a fresh directory, switch CURRENT to it, remove the old ones.

        The old index serves searches until the switch. Documents are written in segments of at
        most ``segment_docs``, by ``workers`` processes once there is more than one segment's
        worth (search.keyword.writing.IndexBuild); with ``total`` known, segments are made
        small enough to give every worker two. ``progress`` gets the count of documents added
        so far, every 100 documents and at the end; ``build_progress()`` tells other processes
        (with ``total``, if given). Raise IndexBusyError if another rebuild of this directory
        is running. Return the number of documents indexed.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._rebuild_lock():
            fresh = self._make_dir()
            report = _ProgressFile(self.directory / BUILDING, fresh.name, total, progress)
            try:
                index = _storage(fresh).create_index(make_schema())
                if total is not None and workers != 1:
                    # Segments enough for every worker (at most BUILD_BATCH_DOCS each).
                    share = -(-total // (2 * (workers or MAX_WORKERS)))
                    segment_docs = min(segment_docs, max(share, MIN_PARALLEL_SEGMENT))
                build = IndexBuild(
                    index, segment_docs=segment_docs, workers=workers, progress=report.update
                )
                try:
                    build.add(docs)
                    added = build.finish()
                except BaseException:
                    build.cancel()
                    raise
                index.close()
                _fsync_files(fresh)  # Whoosh does not: CURRENT must never name unwritten data
                self._switch(fresh.name)
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
            finally:
                report.remove()
            with self._lock:
                self._sync()
            self._remove_old(keep=fresh.name)
        return added

    def build_progress(self) -> BuildProgress | None:
        """Return the progress of a rebuild running on this directory (any process), or None."""
        path = self.directory / BUILDING
        if not path.exists():
            return None
        with contextlib.suppress(OSError), open(self.directory / ".rebuild.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: a rebuild runs, its file is current
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
                return None  # left behind by a rebuild that died
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return BuildProgress(int(data["added"]), data.get("total"), float(data["started_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @contextlib.contextmanager
    def _rebuild_lock(self) -> Iterator[None]:
        with open(self.directory / ".rebuild.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusyError(f"a rebuild of {self.directory} is running") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _make_dir(self) -> Path:
        """Create the next ``<fingerprint[:16]>-<n>`` directory (n above every existing one)."""
        numbers = [int(m.group(1)) for m in map(_INDEX_DIR.fullmatch, self._dir_names()) if m]
        n = max(numbers, default=0) + 1
        prefix = analysis.analyzer_fingerprint()[:16]
        while True:
            path = self.directory / f"{prefix}-{n}"
            try:
                path.mkdir()
            except FileExistsError:
                n += 1
                continue
            return path

    def _dir_names(self) -> list[str]:
        return [p.name for p in self.directory.iterdir() if p.is_dir()]

    def _switch(self, name: str) -> None:
        """Point CURRENT at ``name`` atomically (temp file, fsync, rename, fsync the directory)."""
        temp = self.directory / f".{POINTER}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.directory / POINTER)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _remove_old(self, keep: str) -> None:
        """Remove every other index directory; other processes switch at their next call."""
        for name in self._dir_names():
            if name != keep and _INDEX_DIR.fullmatch(name):
                shutil.rmtree(self.directory / name, ignore_errors=True)

    def upsert(self, docs: Iterable[CampaignText]) -> None:
        """Add or replace documents by id in one commit; skip any older than the indexed one.

        Raise IndexUnavailableError when there is no usable index (rebuild first).
        """
        # Whoosh cannot replace a document added in the same writer: keep one per id.
        newest: dict[int, CampaignText] = {}
        for doc in docs:
            if doc.id not in newest or doc.version >= newest[doc.id].version:
                newest[doc.id] = doc
        batch = list(newest.values())
        if not batch:
            return
        with self._writer() as writer, writer.searcher() as searcher:
            for doc in batch:
                stored = searcher.document(id=str(doc.id))
                if stored is not None and stored["version"] > doc.version:
                    continue  # a late, out-of-order change: the index already has a newer one
                writer.update_document(**to_fields(doc))

    def delete(self, ids: Iterable[int]) -> None:
        """Remove documents by campaign id in one commit (unknown ids are ignored)."""
        id_list = list(ids)
        if not id_list:
            return
        with self._writer() as writer:
            for campaign_id in id_list:
                writer.delete_by_term("id", str(campaign_id))

    @contextlib.contextmanager
    def _writer(self) -> Iterator[Any]:
        """Yield a writer on the live index; commit on success, cancel on error."""
        with self._lock:
            self._sync()
            index = self._index
        if index is None:
            raise IndexUnavailableError(self.problem or "no keyword index")
        # Outside self._lock: a commit can take a second and searches need not wait for it.
        writer = index.writer(timeout=WRITE_TIMEOUT_S)
        try:
            yield writer
        except BaseException:
            writer.cancel()
            raise
        try:
            writer.commit()
        except BaseException:
            # A commit that fails half-way keeps the write lock (every later write would wait
            # WRITE_TIMEOUT_S and fail) and its files open: cancel what is left of it. The change
            # log still holds the work.
            with contextlib.suppress(Exception):
                writer.cancel()
            if writer.writelock is not None:
                with contextlib.suppress(Exception):
                    writer.writelock.release()
            raise

    # Reading

    def _current(self) -> Snapshot | None:
        self._sync()
        return self._snapshot

    def count(self) -> int:
        """Return the number of indexed campaigns (0 without a usable index)."""
        with self._lock:
            snap = self._current()
            return 0 if snap is None else int(snap.searcher.doc_count())

    def versions(self) -> dict[int, int]:
        """Return campaign id -> indexed version, to reconcile with the database."""
        with self._lock:
            snap = self._current()
            if snap is None:
                return {}
            return dict(snap.ids().versions)

    def search(
        self,
        query: str,
        *,
        filters: SearchFilters,
        limit: int,
        offset: int = 0,
        facets: bool = False,
        order: tuple[MetricRange, bool] | None = None,
    ) -> KeywordResult:
        """Return one page of matching campaigns, best first (ties: index order).

        An empty query lists every campaign matching the filters, latest start first (then
        highest id), score 0; with ``order`` (a metric's key and field, and whether highest
        first), by that metric's value instead, campaigns without it last. A query that
        analyzes to no terms (only stop words or punctuation) matches nothing. ``total`` and ``facets`` cover the whole result set.
        Without a usable index the result is empty.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        terms = query_terms(query)
        with self._lock:
            snap = self._current()
            if snap is None or (query.strip() and not terms):
                return KeywordResult([], 0, _empty_facets() if facets else {})
            ids = snap.ids()
            allowed = snap.filter_mask(filters)
            hits: list[KeywordHit]
            if terms:
                ranking = rank(
                    snap.searcher,
                    terms,
                    snap.field_lengths(),
                    ids.live if allowed is None else allowed,
                    snap.postings,
                )
                matched = ranking.docnums
                page = ranking.top(offset + limit)[offset:]
                # Hits share few distinct sets of matched terms: each tuple is built once.
                matched_terms: dict[int, tuple[str, ...]] = {}
                hits = []
                for docnum, score, mask in zip(
                    ranking.docnums[page].tolist(),
                    ranking.scores[page].tolist(),
                    ranking.masks[page].tolist(),
                    strict=True,
                ):
                    if mask not in matched_terms:
                        matched_terms[mask] = tuple(
                            t for bit, t in enumerate(terms) if mask >> bit & 1
                        )
                    hits.append(KeywordHit(ids.by_doc[docnum], score, matched_terms[mask]))
            else:
                matched = np.flatnonzero(ids.live if allowed is None else allowed)
                if order is None:
                    latest = snap.latest(allowed, offset + limit)
                else:
                    name = metric_field(order[0].key, order[0].field)
                    latest = snap.by_number(allowed, name, order[1], offset + limit)
                hits = [KeywordHit(ids.by_doc[d], 0.0, ()) for d in latest[offset:]]
            counts = snap.count_facets(matched) if facets else {}
            return KeywordResult(hits, len(matched), counts)

    def metric_values(self, campaign_ids: Iterable[int], metric: MetricRange) -> dict[int, float]:
        """Return the indexed value of ``metric``'s key and field for each campaign that has one."""
        with self._lock:
            snap = self._current()
            if snap is None:
                return {}
            by_id = snap.ids().by_id
            values = snap.numbers(metric_field(metric.key, metric.field))
            found = {}
            for campaign_id in campaign_ids:
                docnum = by_id.get(campaign_id)
                if docnum is not None and not np.isnan(value := values[docnum]):
                    found[campaign_id] = float(value)
            return found

    def matching_ids(self, filters: SearchFilters) -> set[int] | None:
        """Return the ids of every campaign matching ``filters``; None when nothing is filtered."""
        if filters.is_empty:
            return None
        with self._lock:
            snap = self._current()
            if snap is None:
                return set()
            mask = snap.filter_mask(filters)
            if mask is None:  # unreachable: is_empty said there is a filter
                return None
            return set(snap.ids().doc_ids[mask].tolist())

    @staticmethod
    def snippet(text: str, query: str, max_len: int = 160) -> str:
        """Return an HTML snippet of ``text`` around the terms of ``query`` (module ``snippet``)."""
        return snippet(text, query, max_len)

    def facet_counts(self, ids: Iterable[int]) -> dict[str, dict[str, int]]:
        """Return facet counts over the given campaigns (ids not in the index are ignored)."""
        with self._lock:
            snap = self._current()
            if snap is None:
                return _empty_facets()
            by_id = snap.ids().by_id
            docnums = np.fromiter((by_id[i] for i in ids if i in by_id), np.int64)
            return snap.count_facets(docnums)


def _cache_missing_columns() -> None:
    """Make Whoosh remember that a segment has no column for a field, as it remembers one it has.

    ``W3PerDocReader._cached_reader`` (whoosh-reloaded 2.7.5) keeps the column readers it opens
    but not their absence, and a commit asks each posting's field length: every posting of a
    field stored without lengths (ids, facets, numbers) cost a file-existence check, ≈ 200
    ``os.stat`` calls per campaign, ≈ 15 % of a rebuild's CPU (bench/results/latency_breakdown.txt).
    A segment's files never change once written, so its absent columns stay absent.
    """
    reader_class = whoosh3.W3PerDocReader
    if getattr(reader_class._cached_reader, "remembers_absence", False):
        return

    def cached_reader(self: Any, fieldname: str, column: Any) -> Any:
        readers = self._readers
        if fieldname not in readers:
            has = self.has_column(fieldname)
            readers[fieldname] = self.column_reader(fieldname, column) if has else None
        return readers[fieldname]

    cached_reader.remembers_absence = True  # type: ignore[attr-defined]
    reader_class._cached_reader = cached_reader


_cache_missing_columns()


def _storage(path: Path) -> FileStorage:
    """Return Whoosh's storage for one index directory, reading files without mmap.

    With mmap, Whoosh opens each file inside a segment as ``BytesIO(memoryview)``, which copies
    it: the whole index ends up in memory twice (mapped pages and the copies, ≈ 170 MB per
    worker at 10k campaigns). Plain reads fetch only the blocks a query touches.
    """
    return FileStorage(str(path), supports_mmap=False)


def _fsync_files(directory: Path) -> None:
    """Flush every file under ``directory`` to disk."""
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _empty_facets() -> dict[str, dict[str, int]]:
    return {name: {} for name in FACET_FIELDS}
