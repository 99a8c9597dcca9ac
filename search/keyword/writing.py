"""Stage 5a, writing: fill a new Whoosh index with many campaigns, a segment at a time.

Whoosh's own writer spends most of a rebuild per posting: every (field, term, document) goes
through its posting pool as a tuple, is sorted with all the others, then through six Python
calls of the codec (field length looked up, posting added, block statistics updated). Here a
segment's postings are gathered per term in arrays as documents are added (they arrive in
document order, so nothing is sorted but the terms), and each term's blocks are handed to
Whoosh's own block and term writers whole. Text is analyzed by ``analysis.analyze`` once per
field, which yields the terms Whoosh's analyzer chain yields, without a Token per word.

The files are Whoosh's: the same codec writes the same blocks, term infos and per-document
columns in the same order, so the index reads and scores exactly as one built by
``IndexWriter.add_document`` (tests compare the two term by term). ``IndexBuild`` splits a
rebuild into segments and, for a large one, writes them in worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from whoosh import formats
from whoosh.codec import default_codec
from whoosh.codec.whoosh3 import W3FieldWriter
from whoosh.filedb.filestore import FileStorage
from whoosh.index import TOC, clean_files
from whoosh.system import pack_uint
from whoosh.writing import SegmentWriter

from search import analysis, lexicon
from search.documents import CampaignText
from search.keyword.columns import segment_field_lengths
from search.keyword.fields import to_fields

# A text field's terms with their frequencies, and its length (the number of terms).
Analyzed = tuple[dict[str, int], int]


def analyze_text(text: str) -> Analyzed:
    """Return the terms ``text`` indexes as (term -> frequency, length), as Whoosh counts them."""
    terms = analysis.analyze(text)
    return Counter(terms), len(terms)


class ShortTextCache:
    """Analyses of short texts, which recur across campaigns (channel and audience lists,
    metric names, goals). Long ones (retro bodies) rarely repeat whole and would only fill
    memory. One cache serves one build: the lexicon cannot change under it.
    """

    MAX_CHARS = 256
    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._found: dict[str, Analyzed] = {}

    def analyze(self, text: str) -> Analyzed:
        """Return ``analyze_text(text)``, from the cache for a short text seen before."""
        if len(text) > self.MAX_CHARS:
            return analyze_text(text)
        found = self._found.get(text)
        if found is None:
            if len(self._found) >= self.MAX_ENTRIES:
                self._found.clear()
            found = self._found[text] = analyze_text(text)
        return found


# A term's postings while a segment is open: document numbers, and per document the frequency
# (Frequency format) or the weight (formats whose postings carry no value).
_Postings = tuple["array[int]", "array[Any]"]


class _FieldPostings:
    """Every posting of one field in the open segment, grouped by term."""

    def __init__(self, field: Any) -> None:
        self.format = field.format
        # Frequency postings store the frequency; the weight and value follow from it.
        self.by_frequency = type(self.format) is formats.Frequency
        self.boost = float(self.format.field_boost)
        self.terms: dict[bytes, _Postings] = {}
        self.analyzed = False

    def add_counts(self, docnum: int, counts: dict[str, int]) -> None:
        """Add a document's analyzed terms and their frequencies (Frequency format)."""
        terms = self.terms
        for word, freq in counts.items():
            btext = word.encode("utf-8")
            found = terms.get(btext)
            if found is None:
                found = terms[btext] = (array("I"), array("I"))
            found[0].append(docnum)
            found[1].append(freq)

    def add_items(self, docnum: int, items: Any, fieldboost: float) -> int:
        """Add ``field.index`` items of a document; return the field length (sum of freqs)."""
        terms = self.terms
        length = 0
        for btext, freq, weight, vbytes in items:
            length += freq
            found = terms.get(btext)
            if self.by_frequency:
                if weight != freq * self.boost or fieldboost != 1.0:
                    raise ValueError("a Frequency posting whose weight is not freq x boost")
                if found is None:
                    found = terms[btext] = (array("I"), array("I"))
                found[1].append(freq)
            else:
                if vbytes:
                    raise ValueError(f"unexpected posting value for format {self.format!r}")
                if found is None:
                    found = terms[btext] = (array("I"), array("d"))
                found[1].append(weight * fieldboost)
            found[0].append(docnum)
        return length


class BatchSegmentWriter(SegmentWriter):  # type: ignore[misc]  # whoosh ships no type hints
    """Write one new segment of an index: postings kept per term, written a block at a time.

    Only ``add_document`` and the flush differ from Whoosh's ``SegmentWriter``; the
    per-document columns and the segment's files are Whoosh's. It takes no lock and touches
    no TOC: ``segment()`` finishes the files and returns the segment, which the caller lists
    in the index's TOC (several processes can write segments of one index at once).
    """

    def __init__(self, ix: Any, cache: ShortTextCache | None = None) -> None:
        # SegmentWriter.__init__ without the lock and without its posting pool, whose temp
        # directory (one name per index) two processes writing at once would share.
        self.writelock = None
        self.codec = default_codec()
        self.storage = ix.storage
        self.indexname = ix.indexname
        info = ix._read_toc()
        self.generation = info.generation + 1
        self.schema = info.schema
        self.segments = info.segments
        self.docnum = self.docbase = 0
        self._setup_doc_offsets()
        self.newsegment = self.codec.new_segment(self.storage, self.indexname)
        self.compound = self.newsegment.should_assemble()
        self.is_closed = False
        self._added = False
        self.pool = None
        self._tempstorage = None
        self.perdocwriter = self.codec.per_document_writer(self.storage, self.newsegment)
        self.fieldwriter = self.codec.field_writer(self.storage, self.newsegment)
        self.merge, self.optimize, self.mergetype = False, False, None
        self._searcher = None
        self._cache = cache or ShortTextCache()
        self._fields: dict[str, _FieldPostings] = {}
        self._analyzer = analysis.make_analyzer()

    def segment(self) -> Any:
        """Write the segment's files and return it (Whoosh's ``Segment``, picklable)."""
        self._check_state()
        segment = self._finalize_segment()
        self.is_closed = True
        return segment

    def cancel(self) -> None:
        """Close the segment's files; they are removed with the unfinished index directory."""
        if not self.is_closed:
            self._close_segment()
            self.is_closed = True

    def _finish(self) -> None:
        self.is_closed = True  # no searcher, temp storage or lock to release

    def _close_segment(self) -> None:
        if not self.perdocwriter.is_closed:
            self.perdocwriter.close()
        if not self.fieldwriter.is_closed:
            self.fieldwriter.close()

    def _postings(self, name: str, field: Any) -> _FieldPostings:
        found = self._fields.get(name)
        if found is None:
            if field.vector or field.separate_spelling():
                raise ValueError(f"field {name!r}: term vectors and spelling are not supported")
            found = self._fields[name] = _FieldPostings(field)
            # Text through our analyzer: analysis.analyze gives its terms without Tokens.
            found.analyzed = (
                found.by_frequency and getattr(field, "analyzer", None) == self._analyzer
            )
        return found

    def add_document(self, **fields: Any) -> None:
        """Add one document (as ``SegmentWriter.add_document``, without boosts or vectors)."""
        self._check_state()
        if any(name.startswith("_") for name in fields):
            raise ValueError("boosts and custom stored values are not supported here")
        perdocwriter = self.perdocwriter
        schema = self.schema
        docnum = self.docnum
        fieldnames = sorted(fields)
        self._check_fields(schema, fieldnames)
        perdocwriter.start_doc(docnum)
        try:
            for fieldname in fieldnames:
                value = fields[fieldname]
                if value is None:
                    continue
                field = schema[fieldname]
                length = 0
                if field.indexed:
                    postings = self._postings(fieldname, field)
                    if postings.analyzed:
                        counts, length = self._cache.analyze(value)
                        postings.add_counts(docnum, counts)
                    else:
                        length = postings.add_items(docnum, field.index(value), 1.0)
                    if not field.scorable:
                        length = 0
                perdocwriter.add_field(fieldname, field, value if field.stored else None, length)
                column = field.column_type
                if column:
                    perdocwriter.add_column_value(fieldname, column, field.to_column_value(value))
        except Exception:
            perdocwriter.cancel_doc()
            raise
        perdocwriter.finish_doc()
        self._added = True
        self.docnum += 1

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        lengths = self.per_document_reader()
        try:
            _write_postings(self.fieldwriter, self.schema, lengths, self._fields, self.docnum)
        finally:
            self.fieldwriter.close()
            lengths.close()
        self._fields = {}


def _write_postings(
    fieldwriter: W3FieldWriter,
    schema: Any,
    lengths: Any,
    by_field: dict[str, _FieldPostings],
    doc_count: int,
) -> None:
    """Write every field's terms, sorted as Whoosh's pool sorts them, a block at a time."""
    for fieldname in sorted(by_field):
        postings = by_field[fieldname]
        if not postings.terms:
            continue
        field = schema[fieldname]
        fieldwriter.start_field(fieldname, field)
        # The field length of each document as the codec reads it back (quantized; 0 for
        # none): Whoosh's writer asks it once per posting.
        field_lengths = segment_field_lengths(lengths, fieldname, doc_count).tolist()
        by_frequency, boost = postings.by_frequency, postings.boost
        for btext in sorted(postings.terms):
            docs, numbers = postings.terms[btext]
            fieldwriter.start_term(btext)
            writer = fieldwriter._postwriter
            limit = writer._blocklimit
            count = len(docs)
            for start in range(0, count, limit):
                block_docs = docs[start : start + limit]
                if by_frequency:
                    freqs = numbers[start : start + limit]
                    weights = [f * boost for f in freqs]
                    values = [pack_uint(f) for f in freqs]
                else:
                    weights = numbers[start : start + limit].tolist()
                    values = []
                block_lengths = [n for n in map(field_lengths.__getitem__, block_docs) if n]
                writer._ids = block_docs
                writer._weights = array("f", weights)
                writer._values = values
                writer._maxweight = max(0, max(weights))
                writer._minlength = min(block_lengths) if block_lengths else None
                writer._maxlength = max(block_lengths, default=0)
                if start + limit < count:
                    writer._write_block()  # the last block is written by finish_term
            fieldwriter.finish_term()
        fieldwriter.finish_field()


class IndexBuild:
    """Fill a new, empty index in segments of at most ``segment_docs`` documents.

    Each segment is listed in the index's TOC as soon as it and the ones before it are written,
    so memory stays bounded by the segments in flight, documents keep their order, and no final
    merge reads everything back. With ``workers`` 1 every segment is written here as documents
    come. With more, segments are written by that many processes while this one reads the
    documents, from the first one on (of at most ``FIRST_SEGMENT_DOCS``, so they start early);
    a build smaller than that is written here and never pays for starting them (about a
    second each: imports, dictionary). Progress: every ``PROGRESS_EVERY`` documents
    written here or by a worker (their count is shared), at most once a second while waiting.
    ``workers=None``: one per core, at most ``MAX_WORKERS``. Workers are spawned, not forked
    (the app's threads may hold locks at a fork): the calling program must be importable
    without side effects (``if __name__ == "__main__"``), as multiprocessing requires. They get
    this process's lexicon files and refuse to start if their analyzer differs.
    """

    def __init__(
        self,
        index: Any,
        *,
        segment_docs: int,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if segment_docs < 1:
            raise ValueError("segment_docs must be positive")
        self._index = index
        self._directory = str(index.storage.folder)
        self._segment_docs = segment_docs
        self._workers = min(os.cpu_count() or 1, MAX_WORKERS) if workers is None else workers
        self._progress = progress
        self._cache = ShortTextCache()
        self._batch: list[CampaignText] = []
        self._writer: BatchSegmentWriter | None = None
        self._in_segment = 0
        self._pool: ProcessPoolExecutor | None = None
        # Documents the workers have written (a counter they share), and those of them whose
        # segments are listed already: progress between two finished segments.
        self._written: Any = None
        self._listed_from_workers = 0
        self._reported = 0
        self._pending: deque[tuple[int, Future[Any]]] = deque()
        self.added = 0

    def add(self, docs: Iterable[CampaignText]) -> None:
        """Add documents, in order."""
        for doc in docs:
            if self._workers <= 1:
                self._add_here(doc)
                continue
            self._batch.append(doc)
            if len(self._batch) >= self._next_segment_docs():
                self._dispatch()
            elif len(self._batch) % PROGRESS_EVERY == 0:
                self._report_workers()

    def _next_segment_docs(self) -> int:
        """Return the size of the segment being collected for the workers.

        The first is at most FIRST_SEGMENT_DOCS: the workers start once that many documents
        have come (a smaller build is written here, without them) and have work while the
        rest is read, instead of one core idling through a whole segment.
        """
        if self._pool is None:
            return min(self._segment_docs, FIRST_SEGMENT_DOCS)
        return self._segment_docs

    def _report_workers(self) -> None:
        """Report the documents the workers have written so far, listed or not."""
        if self._progress is None or self._written is None:
            return
        done = self.added + self._written.value - self._listed_from_workers
        if done > self._reported:
            self._reported = done
            self._progress(done)

    def _add_here(self, doc: CampaignText) -> None:
        """Add a document to the segment this process writes (the first, or all of them)."""
        if self._writer is None:
            self._writer = BatchSegmentWriter(self._index, self._cache)
            self._in_segment = 0
        self._writer.add_document(**to_fields(doc))
        self._in_segment += 1
        if self._in_segment >= self._segment_docs:
            self._list_own_segment()
        elif self._progress is not None and self._in_segment % PROGRESS_EVERY == 0:
            self._reported = self.added + self._in_segment
            self._progress(self._reported)

    def _list_own_segment(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._list(writer.segment(), self._in_segment)

    def _start_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        self._written = context.Value("q", 0)
        self._pool = ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(lexicon_paths(), analysis.analyzer_fingerprint(), self._written),
        )
        return self._pool

    def _dispatch(self) -> None:
        pool = self._pool or self._start_pool()
        batch, self._batch = self._batch, []
        future = pool.submit(_write_in_worker, self._directory, batch)
        self._pending.append((len(batch), future))
        # One segment queued behind each busy worker: enough to keep them fed, bounded memory.
        while len(self._pending) > self._workers:
            self._take()

    def _take(self) -> None:
        count, future = self._pending.popleft()
        while not wait([future], timeout=_POLL_S).done:
            self._report_workers()  # a worker's segment takes a while: show its progress
        self._list(future.result(), count)
        self._listed_from_workers += count

    def _list(self, segment: Any, count: int) -> None:
        """Add a written segment to the index's TOC (the documents after those listed before)."""
        toc = self._index._read_toc()
        segments = [*toc.segments, segment]
        TOC(toc.schema, segments, toc.generation + 1).write(
            self._index.storage, self._index.indexname
        )
        # Not Whoosh's clean_files here: it deletes the files of segments not listed yet,
        # those the workers are writing. Old TOCs go in finish().
        self.added += count
        if self._progress is not None and self.added > self._reported:
            self._reported = self.added
            self._progress(self.added)

    def finish(self) -> int:
        """Write what is left, list every segment; return the number of documents added."""
        self._list_own_segment()
        if self._batch and self._pool is None:  # less than a first segment: no worker started
            for doc in self._batch:
                self._add_here(doc)
            self._batch = []
            self._list_own_segment()
        if self._batch:
            self._dispatch()
        while self._pending:
            self._take()
        self._close_pool()
        toc = self._index._read_toc()
        clean_files(self._index.storage, self._index.indexname, toc.generation, toc.segments)
        # The columns' scratch directory every segment writer shares (Whoosh's SegmentWriter
        # removes it when it finishes; these writers leave it to the last one).
        shutil.rmtree(Path(self._directory) / f"{self._index.indexname}.tmp", ignore_errors=True)
        return self.added

    def cancel(self) -> None:
        """Stop: drop what is pending and stop the workers (the caller removes the directory)."""
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._batch = []
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        self._close_pool()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def write_segment(
    index: Any,
    docs: list[CampaignText],
    cache: ShortTextCache | None = None,
    written: Callable[[int], None] | None = None,
) -> Any:
    """Write ``docs`` as one new segment of ``index`` and return it (not yet in the TOC).

    ``written`` gets the count of documents added since its last call, every PROGRESS_EVERY.
    """
    writer = BatchSegmentWriter(index, cache)
    try:
        for n, doc in enumerate(docs, 1):
            writer.add_document(**to_fields(doc))
            if written is not None and n % PROGRESS_EVERY == 0:
                written(PROGRESS_EVERY)
        segment = writer.segment()
        if written is not None and len(docs) % PROGRESS_EVERY:
            written(len(docs) % PROGRESS_EVERY)
        return segment
    except BaseException:
        writer.cancel()
        raise


def _write_in_worker(directory: str, docs: list[CampaignText]) -> Any:
    """Write one segment of the index in ``directory`` (run in a worker process)."""
    index = FileStorage(directory, supports_mmap=False).open_index()
    try:
        return write_segment(index, docs, _worker_cache, _count_written)
    finally:
        index.close()


def _count_written(count: int) -> None:
    """Add to the documents written by every worker (read by the building process)."""
    if _worker_written is not None:
        with _worker_written.get_lock():
            _worker_written.value += count


PROGRESS_EVERY = 100  # documents between two progress calls within a segment written here
MAX_WORKERS = 2
# The first segment of a build with workers: small, so both workers write from early on (a
# first segment of 10,000 written here while the documents were read kept a core idle: 10 %
# of a 100k build). Builds smaller than this are written here, without starting a process.
FIRST_SEGMENT_DOCS = 2_000


def lexicon_paths() -> tuple[Path, Path, Path]:
    """Return the dictionary, synonym and stop-word files this process analyzes with."""
    return lexicon.USERDICT_PATH, lexicon.SYNONYMS_PATH, lexicon.STOPWORDS_PATH


def _start_worker(paths: tuple[Path, Path, Path], fingerprint: str, written: Any) -> None:
    """Point a worker at the parent's lexicon files; refuse to analyze differently."""
    global _worker_written
    lexicon.USERDICT_PATH, lexicon.SYNONYMS_PATH, lexicon.STOPWORDS_PATH = paths
    if analysis.analyzer_fingerprint() != fingerprint:
        raise RuntimeError("an analysis worker's analyzer differs from the indexing process's")
    _worker_written = written


_worker_cache = ShortTextCache()
_worker_written: Any = None  # the building process's count of documents written by workers
# How often the building process, waiting for a worker's segment, reports progress.
_POLL_S = 1.0
