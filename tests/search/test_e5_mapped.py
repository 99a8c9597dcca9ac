"""e5 runs on its converted weights file mapped, not on a copy: in bf16 (CPUs that have it) and in
fp32 alike, the word embeddings' memory is a mapping of the folder's model.safetensors, which
the page cache holds once for every worker of the host."""

from __future__ import annotations

from pathlib import Path

from search.embedder import SentenceTransformerEmbedder


def _mapping_holding(address: int, size: int) -> str:
    """Return what /proc/self/maps names for the memory [address, address + size)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start <= address and address + size <= end:
            return fields[5] if len(fields) == 6 else "[anonymous]"
    return "[unmapped]"


def test_the_word_embeddings_are_the_mapped_file(e5: SentenceTransformerEmbedder) -> None:
    weight = e5.model()[0].auto_model.embeddings.word_embeddings.weight
    size = weight.numel() * weight.element_size()
    mapped = _mapping_holding(weight.data_ptr(), size)
    assert mapped.endswith("/model.safetensors"), mapped
    assert Path(mapped).parent.name in {"e5-small-bf16", "e5-small-fp32"}
