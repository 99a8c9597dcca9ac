"""A model added to KB_EMBEDDING_MODELS fills in the background and serves only once complete.

It shows as filling, then serving, on /admin/settings and in GET /api/v1/index/status.

The added model is a real sentence-transformers folder built here: a one-layer BERT with random
weights and a small character vocabulary, saved with sentence-transformers' own ``save`` and
query / passage prompts in its config. The models already there are the product's e5 and USE.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from kb.extensions import db
from kb.models import IndexOutbox
from kb.searching import backfill, floor, worker
from kb.searching.indexer import get_indexes, reconcile
from search.embedder import Embedder, Prompts, SentenceTransformerEmbedder, query_cache
from tests.conftest import TABLES, make_app
from tests.factories import campaign_payload
from tests.integration.conftest import MODELS_DIR

pytestmark = pytest.mark.integration

TITLES = [
    "沉默用户回流：短信加优惠券召回老客",
    "直播间投流预算复盘",
    "会员复购拉新活动",
    "私域社群双十一大促",
    "满减券召回沉默会员",
]
QUERY_PROMPT = "查询："
PASSAGE_PROMPT = "文档："


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a tiny sentence-transformers folder (random weights) with prompts in its config."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    chars = sorted(
        set("".join(TITLES) + QUERY_PROMPT + PASSAGE_PROMPT + "双十一沉睡会员召回满减券企微社群")
    )
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *"0123456789abcdefghij"]
    bert = root / "bert"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert)
    BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(bert)
    model = SentenceTransformer(
        modules=[Transformer(str(bert), max_seq_length=64), Pooling(32, "mean"), Normalize()],
        device="cpu",
        prompts={"query": QUERY_PROMPT, "document": PASSAGE_PROMPT},
    )
    folder = root / "tiny-zh"
    model.save(str(folder))
    shutil.rmtree(bert)  # the saved folder stands alone
    return folder


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """A fresh database: the migrated SQLite template copied in, or PostgreSQL emptied."""
    if request.param == "sqlite":
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "kb.sqlite3")
        return None
    url: str = request.getfixturevalue("postgres_schema")
    seed = make_app(tmp_path / "truncate", url)
    with seed.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    return url


def library_app(tmp_path: Path, database: str | None, models: str) -> Flask:
    return make_app(tmp_path, database, EMBEDDING_MODELS=models, MODELS_DIR=str(MODELS_DIR))


def states(app: Flask) -> dict[str, tuple[str, int, int]]:
    with app.app_context():
        return {m.name: (m.status, m.embedded, m.live) for m in backfill.model_states()}


def embedder(app: Flask, name: str) -> Embedder:
    with app.app_context():
        return next(e for e in get_indexes().embedders if e.name == name)


def new_campaign(app: Flask, title: str) -> None:
    body = campaign_payload(title=title, external_id=f"backfill-{title}")
    answer = app.test_client().post("/api/v1/campaigns", json=body)
    assert answer.status_code == 201, answer.get_json()


def status_models(app: Flask) -> dict[str, tuple[str, float, int]]:
    answer = app.test_client().get("/api/v1/index/status")
    assert answer.status_code == 200, answer.get_json()
    return {
        m["name"]: (m["status"], m["coverage_pct"], m["dim"]) for m in answer.get_json()["models"]
    }


def semantic_search(app: Flask, q: str) -> list[int]:
    answer = app.test_client().get("/api/v1/search", query_string={"q": q, "mode": "semantic"})
    assert answer.status_code == 200, answer.get_json()
    return [hit["id"] for hit in answer.get_json()["results"]]


def test_an_added_model_fills_in_the_background_and_serves_once_complete(
    tmp_path: Path,
    database: str | None,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A library indexed with the two models of today.
    before = library_app(tmp_path, database, "e5,use")
    for title in TITLES:
        new_campaign(before, title)
    assert states(before) == {"e5": ("serving", 5, 5), "use": ("serving", 5, 5)}

    # The third model joins with a fusion weight; the app starts as a deployment would.
    app = library_app(tmp_path, database, f"e5,use,tiny=  {tiny_model}:0.5")
    tiny = embedder(app, "tiny")
    assert isinstance(tiny, SentenceTransformerEmbedder)
    assert tiny.prompts == Prompts(query=QUERY_PROMPT, passage=PASSAGE_PROMPT)
    with app.app_context():
        assert backfill.weights() == {"e5": 1.0, "use": 1.0, "tiny": 0.5}
    assert states(app)["tiny"] == ("filling", 0, 5)
    with app.app_context():
        assert [e.name for e in backfill.serving()] == ["e5", "use"]
        # Start-up's reconcile leaves it to the backfill: no change-feed entry waits for it.
        reconcile()
        waiting = sa.select(sa.func.count()).where(IndexOutbox.embedded_at.is_(None))
        assert db.session.scalar(waiting) == 0

    # Not served while incomplete: no query is encoded with it, the old models rank alone.
    assert semantic_search(app, "沉默会员召回")
    assert query_cache(tiny).misses == 0
    monkeypatch.setattr(backfill, "PROGRESS_LOG_S", 0.0)
    with app.app_context(), caplog.at_level(logging.INFO, logger=backfill.__name__):
        assert backfill.fill(max_slices=1) == backfill.SLICE  # part of the library only
    assert "模型 tiny 后台补算向量：2 / 5 个活动（40.0%）" in caplog.messages
    assert states(app)["tiny"] == ("filling", backfill.SLICE, 5)
    assert status_models(app) == {
        "e5": ("serving", 100.0, 384),
        "use": ("serving", 100.0, 512),
        "tiny": ("filling", 40.0, 32),
    }
    assert semantic_search(app, "直播投流")
    assert query_cache(tiny).misses == 0

    # A write while filling is embedded by the drain with every model, the new one included.
    new_campaign(app, "会员拉新")
    assert states(app)["tiny"] == ("filling", backfill.SLICE + 1, 6)

    # The indexer's background round (drain, then fill) completes it; then it serves.
    failures: list[BaseException] = []

    def background_round() -> None:
        with app.app_context():
            try:
                worker.run_round()
            except BaseException as exc:  # surfaced below, in the test's thread
                failures.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=background_round, name="kb-indexer-round")
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert not failures
    assert states(app) == {
        "e5": ("serving", 6, 6),
        "use": ("serving", 6, 6),
        "tiny": ("serving", 6, 6),
    }
    with app.app_context():
        # The round recalibrated the relevance floor with it: the next search does not pay.
        assert "tiny" in floor._state(get_indexes()).calibrated_at
    assert semantic_search(app, "沉默会员召回")
    assert query_cache(tiny).misses >= 1  # the query was encoded with the new model too
    assert status_models(app)["tiny"] == ("serving", 100.0, 32)

    # The settings page shows the models in force.
    page = app.test_client().get("/admin/settings").get_data(as_text=True)
    assert "嵌入模型" in page
    assert page.count("服务中") == 3
    assert "补算中" not in page
    assert f"<code>{QUERY_PROMPT}</code> / <code>{PASSAGE_PROMPT}</code>" in page


def test_the_settings_page_shows_a_model_still_filling(
    tmp_path: Path, database: str | None, tiny_model: Path
) -> None:
    new_campaign(library_app(tmp_path, database, "use"), TITLES[0])
    app = library_app(tmp_path, database, f"use,{tiny_model}:2")
    page = app.test_client().get("/admin/settings").get_data(as_text=True)
    row = page[page.index("<code>tiny-zh</code>") :].split("</tr>")[0]
    assert "补算中" in row
    assert "0 / 1 个活动（0%）" in row
    assert '<td data-label="融合权重">2</td>' in row


def test_prompts_come_from_the_folder_config(tiny_model: Path) -> None:
    config: dict[str, Any] = json.loads(
        (tiny_model / "config_sentence_transformers.json").read_text(encoding="utf-8")
    )
    assert config["prompts"] == {"query": QUERY_PROMPT, "document": PASSAGE_PROMPT}
    from search.embedder import folder_embedder

    model = folder_embedder(tiny_model, precision="fp32")
    text = "沉默会员召回"
    raw = model.model()
    with_query, with_passage, bare = raw.encode(
        [QUERY_PROMPT + text, PASSAGE_PROMPT + text, text], convert_to_numpy=True
    )
    query = model.encode_queries([text])[0]
    passage = model.encode_passages([text])[0]
    assert float(query @ with_query) == pytest.approx(1.0, abs=1e-5)
    assert float(passage @ with_passage) == pytest.approx(1.0, abs=1e-5)
    # The prompts change the vectors: they are not silently dropped.
    assert float(query @ bare) < 0.999
    assert float(query @ passage) < 0.999
