"""Run multilingual-e5-small from a converted folder with a compact tokenizer.

The folder (search/e5_convert.py) is a normal sentence-transformers model, and loads as one.
Its ``tokenizer.json``, read by ``tokenizers``, holds e5's 250k pieces in ≈ 280 MB per process,
a fifth of a worker's memory. This module tokenizes the same way with the folder's SentencePiece
copy of the pieces (≈ 40 MB): the folder's normalization table (``tokenizers``' Precompiled
normalizer, which holds just that table), runs of spaces collapsed, spaces escaped as "▁" with
one in front, then SentencePiece's Unigram segmentation, ``<s> … </s>`` around the pieces.
The token ids equal tokenizer.json's (tests/search/test_e5_module.py); the weights, mean
pooling and normalization are the folder's own modules.

Kept apart from embedder.py because subclassing ``InputModule`` imports torch at import time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sentence_transformers.base.modules import InputModule

from search.e5_convert import CHARSMAP_NAME, SENTENCEPIECE_NAME

_SPACE_RUNS = re.compile(" {2,}")
_METASPACE = "▁"


class E5Tokenizer:
    """Turn texts into e5 token ids exactly as the folder's tokenizer.json does."""

    def __init__(self, folder: Path, *, max_length: int = 512) -> None:
        import sentencepiece
        from tokenizers import normalizers

        self.max_length = max_length
        self._pieces = sentencepiece.SentencePieceProcessor(
            model_file=str(folder / SENTENCEPIECE_NAME)
        )
        self._normalizer = normalizers.Precompiled((folder / CHARSMAP_NAME).read_bytes())
        self.bos_id = self._pieces.bos_id()
        self.eos_id = self._pieces.eos_id()
        self.pad_id = self._pieces.pad_id()

    def ids(self, text: str) -> list[int]:
        """Return ``<s>``, the text's pieces (cut to fit ``max_length``), ``</s>``."""
        normalized = _SPACE_RUNS.sub(" ", self._normalizer.normalize_str(text))
        pieces: list[int] = []
        if normalized:
            escaped = normalized.replace(" ", _METASPACE)
            if not escaped.startswith(_METASPACE):
                escaped = _METASPACE + escaped
            pieces = self._pieces.encode(escaped)[: self.max_length - 2]
        return [self.bos_id, *pieces, self.eos_id]

    def batch(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Return padded ``input_ids`` and ``attention_mask`` for a batch of texts."""
        rows = [self.ids(text) for text in texts]
        width = max((len(row) for row in rows), default=0)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


class E5Module(InputModule):
    """e5's BertModel fed by ``E5Tokenizer``: token embeddings for the folder's pooling."""

    config_keys = ["max_seq_length"]  # noqa: RUF012  # overrides the base's plain list attribute

    def __init__(self, folder: Path, *, dtype: torch.dtype, max_seq_length: int = 512) -> None:
        from transformers import BertModel

        super().__init__()  # type: ignore[no-untyped-call]  # Module.__init__ is unannotated
        self.max_seq_length = max_seq_length
        self.e5_tokenizer = E5Tokenizer(folder, max_length=max_seq_length)
        # The folder's pooling is the sentence-transformers module, not BERT's pooler.
        self.auto_model = BertModel.from_pretrained(
            str(folder), dtype=dtype, local_files_only=True, add_pooling_layer=False
        )
        self.auto_model.eval()  # type: ignore[no-untyped-call]  # unannotated upstream

    def preprocess(
        self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Tokenize the (prompted) texts."""
        texts = [str(text) for text in inputs]
        return dict(self.e5_tokenizer.batch([prompt + t for t in texts] if prompt else texts))

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``token_embeddings``, the last hidden states, for the pooling module."""
        output = self.auto_model(
            input_ids=features["input_ids"],
            attention_mask=features["attention_mask"],
            return_dict=True,
        )
        features["token_embeddings"] = output.last_hidden_state
        return features

    def get_embedding_dimension(self) -> int:
        """Return the hidden size (384)."""
        return int(self.auto_model.config.hidden_size)

    def save(
        self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any
    ) -> None:
        """Write the config; the weights and tokenizer stay in the converted folder."""
        self.save_config(output_path)
