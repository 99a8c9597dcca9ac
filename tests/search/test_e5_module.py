"""The app's e5 runtime: the compact tokenizer gives tokenizer.json's ids, the model its vectors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from search.e5_convert import CHARSMAP_NAME, SENTENCEPIECE_NAME

ROOT = Path(__file__).resolve().parents[2]
EDGE_CASES = [
    "",
    " ",
    "  leading spaces",
    "trailing spaces  ",
    "a    b",
    "tab\there\nnew line\r\n",
    "Ａ\u0301 ＷＩＮ-ＢＡＣＫ ﹏﹏",
    "雙十一 K值 ⑩ ㎡ ℃ ™ Ω",
    "emoji 😀👍🏽 mixed ❤️",
    "\u200bzero width\u200d joiner",
    "query: 很久没下单的老客怎么召回？",
    "passage: GMV 同比 +35%, ROI 1:4.2",
]


def corpus_texts() -> list[str]:
    """Every text field of the demo campaigns, edge cases, and random cuts of them."""
    texts: list[str] = []
    records = json.loads((ROOT / "kb" / "demo_data" / "campaigns.json").read_text("utf-8"))
    for record in records:
        for value in record.values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, str):
                    texts.append(item)
                elif isinstance(item, dict):
                    texts.extend(str(v) for v in item.values())
    texts += [f"query: {t}" for t in texts[:100]] + EDGE_CASES
    rng = random.Random(20261122)  # noqa: S311  # test data, not secrets
    for _ in range(1500):
        text = rng.choice(texts)
        start = rng.randrange(len(text) + 1)
        texts.append(text[start : rng.randrange(start, len(text) + 1)])
    return texts


@pytest.mark.integration
def test_the_converted_folder_holds_the_compact_tokenizer(e5_dir: Path) -> None:
    assert (e5_dir / SENTENCEPIECE_NAME).is_file()
    assert (e5_dir / CHARSMAP_NAME).is_file()


@pytest.mark.integration
def test_token_ids_equal_the_folders_tokenizer_json(e5_dir: Path) -> None:
    from tokenizers import Tokenizer

    from search.e5_module import E5Tokenizer

    reference = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    ours = E5Tokenizer(e5_dir)
    texts = corpus_texts()
    different = [t for t in texts if ours.ids(t) != reference.encode(t).ids]
    assert different == []
    assert len(texts) > 3000


@pytest.mark.integration
def test_long_texts_are_cut_like_the_folders_tokenizer(e5_dir: Path) -> None:
    from tokenizers import Tokenizer

    from search.e5_module import E5Tokenizer

    reference = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    reference.enable_truncation(512)
    text = "复盘：沉睡用户召回的短信点击率只有1.2%，下次改用企业微信。" * 80
    ids = E5Tokenizer(e5_dir).ids(text)
    assert len(ids) == 512
    assert ids == reference.encode(text).ids


@pytest.mark.integration
def test_a_special_token_typed_in_text_stays_text(e5_dir: Path) -> None:
    # The one deliberate difference from tokenizer.json, which reads "<s>" in a retro as the
    # control token: here it is characters, as SentencePiece (and e5.c) treat it.
    from search.e5_module import E5Tokenizer

    tokenizer = E5Tokenizer(e5_dir)
    ids = tokenizer.ids("<s> literal </s>")
    assert ids[0] == tokenizer.bos_id
    assert ids[-1] == tokenizer.eos_id
    assert tokenizer.bos_id not in ids[1:-1]
    assert tokenizer.eos_id not in ids[1:-1]


@pytest.mark.integration
def test_vectors_equal_the_folder_loaded_as_a_sentence_transformer(e5_dir: Path) -> None:
    from search.embedder import load_e5, load_folder

    texts = [
        "query: 沉睡用户召回 双11",
        "passage: 鲜丰到家 90 天未下单用户召回：短信触达",
        "query: coupon stacking abuse",
    ]
    model = load_e5(e5_dir, precision="fp32")
    ours = model.encode(texts, prompt_name=None)
    reference = load_folder(e5_dir, precision="fp32").encode(texts, prompt_name=None)
    cosines = np.sum(ours * reference, axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert cosines.min() > 0.99999, cosines
    assert model.prompts["query"] == "query: "
    assert model.prompts["passage"] == "passage: "
