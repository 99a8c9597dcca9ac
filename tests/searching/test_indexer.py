"""The indexer: fair to small writes, frugal with embeddings, correct around rebuilds and trash."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.searching import indexer
from search.documents import MAX_PASSAGES, CampaignText, passages
from search.embedder import FakeEmbedder
from search.keyword import SearchFilters
from tests.conftest import make_app
from tests.factories import campaign_payload

NO_FILTERS = SearchFilters()


def _create(**overrides: Any) -> int:
    return services.create_campaign(validate_campaign(campaign_payload(**overrides))).id


def _keyword_ids(query: str) -> list[int]:
    result = indexer.get_indexes().keyword.search(query, filters=NO_FILTERS, limit=20)
    return [hit.campaign_id for hit in result.hits]


@pytest.fixture
def queued_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app whose writes are only queued: the test drains when it chooses."""
    database = request.getfixturevalue("postgres_schema") if request.param else None
    flask_app = make_app(tmp_path, database, INDEX_SYNC=False)
    with flask_app.app_context():
        if database:
            from kb.extensions import db
            from tests.conftest import TABLES

            with db.engine.begin() as connection:
                connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        yield flask_app


both_databases = pytest.mark.parametrize(
    "queued_app", [False, pytest.param(True, marks=pytest.mark.postgres)], indirect=True
)


def _on_encode(hook: Callable[[list[str]], None]) -> list[list[str]]:
    """Call ``hook`` with the texts of every passage batch the first embedder encodes."""
    embedder = indexer.get_indexes().embedders[0]
    assert isinstance(embedder, FakeEmbedder)
    calls: list[list[str]] = []
    original = embedder.encode_passages

    def encode(texts: list[str]) -> Any:
        calls.append(list(texts))
        hook(texts)
        return original(texts)

    embedder.encode_passages = encode  # type: ignore[method-assign]
    return calls


def test_a_huge_campaign_embeds_a_bounded_number_of_passages() -> None:
    text = CampaignText(
        id=1,
        version=1,
        title="超长复盘",
        industry="电商",
        department="运营",
        business_line=None,
        goal_type="gmv",
        status="completed",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 1, 2),
        budget_cny=None,
        audience=(),
        products=(),
        channels=(),
        reward_types=(),
        tags=(),
        lessons="。".join(f"第 {i} 条经验：提前报备短信通道" for i in range(40_000)),
        documents=[(f"附件 {i}", "正文。" * 5_000) for i in range(20)],
    )
    found = passages(text)
    assert len(found) == MAX_PASSAGES
    assert {p.section for p in found} >= {"head", "lessons"}


@both_databases
def test_renaming_a_campaign_reembeds_only_its_head(queued_app: Flask) -> None:
    campaign_id = _create()
    indexer.drain()
    calls = _on_encode(lambda texts: None)
    payload = campaign_payload(title="改名后的双十一召回", version=1)
    services.update_campaign(campaign_id, validate_campaign(payload, update=True))
    indexer.drain()
    encoded = [text for batch in calls for text in batch]
    assert len(encoded) == 1
    assert encoded[0].startswith("改名后的双十一召回")
    assert campaign_id in _keyword_ids("改名后的双十一召回")


@both_databases
def test_small_writes_are_keyword_searchable_while_a_large_campaign_embeds(
    queued_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexer, "EMBED_SLICE", 1)
    large = _create(external_id="large", lessons="经验。" * 20_000, title="超长的复盘")
    small = _create(external_id="small", title="蓝莓拼团小程序", lessons="拼团成团率")
    seen: dict[str, list[int]] = {}
    written: list[int] = []

    def during(texts: list[str]) -> None:
        if texts[0].startswith("蓝莓拼团") and not written:
            # A write that arrives while the drain is busy embedding.
            written.append(_create(external_id="late", title="榴莲快闪店", lessons="快闪"))
        if texts[0].startswith("超长的复盘"):
            seen.setdefault("small", _keyword_ids("蓝莓拼团"))
            seen.setdefault("late", _keyword_ids("榴莲快闪店"))

    calls = _on_encode(during)
    indexer.drain()
    # Smallest first, and the large one's vectors come last.
    assert calls[0][0].startswith("蓝莓拼团")
    assert seen["small"] == [small]
    assert seen["late"] == written
    assert large in _keyword_ids("超长的复盘")


@both_databases
def test_a_rebuild_catches_up_with_writes_made_while_it_ran(queued_app: Flask) -> None:
    _create(external_id="before")
    indexer.drain()
    made: list[int] = []

    def write_meanwhile(_: int) -> None:
        if not made:
            made.append(_create(external_id="during", title="重建期间写入的活动"))

    indexer.rebuild(progress=write_meanwhile)
    assert _keyword_ids("重建期间写入的活动") == made


@both_databases
def test_every_process_drops_a_trashed_campaign_from_its_vectors(queued_app: Flask) -> None:
    campaign_id = _create()
    indexer.drain()
    other = indexer.SearchIndexes(
        Path(queued_app.config["DATA_DIR"]), [FakeEmbedder()]
    )  # another worker on the same data directory
    try:
        other.sync_vectors()
        assert campaign_id in other.vectors["fake"].campaigns()
        services.trash_campaign(campaign_id)
        indexer.drain()  # in this process; the other worker only syncs
        other.sync_vectors()
        assert campaign_id not in other.vectors["fake"].campaigns()
        services.restore_campaign(campaign_id)
        other.sync_vectors()
        assert campaign_id in other.vectors["fake"].campaigns()
    finally:
        other.keyword.close()


@both_databases
def test_outbox_ids_never_repeat_once_the_queue_empties(queued_app: Flask) -> None:
    from kb.extensions import db
    from kb.models import IndexOutbox

    _create(external_id="first")
    first = db.session.scalar(sa.select(sa.func.max(IndexOutbox.id)))
    indexer.drain()
    assert db.session.scalar(sa.select(sa.func.count(IndexOutbox.id))) == 0
    _create(external_id="second")
    assert db.session.scalar(sa.select(sa.func.min(IndexOutbox.id))) > first


@both_databases
def test_an_edit_made_while_a_campaign_embeds_is_not_overwritten_by_its_old_text(
    queued_app: Flask,
) -> None:
    """A slow encoder (a background fill, another host's drain) finishing after the edit's drain."""
    import hashlib

    from kb.extensions import db
    from kb.models import Campaign, PassageEmbedding
    from kb.searching.documents import campaign_text

    edited = _create(external_id="edited", title="会员日满减券召回")  # queued, not yet embedded
    embedder = indexer.get_indexes().embedders[0]

    def current_text() -> CampaignText:
        text = campaign_text(db.session.get(Campaign, edited))
        db.session.commit()
        return text

    def stored() -> set[str]:
        found = set(
            db.session.scalars(
                sa.select(PassageEmbedding.text_sha1).where(
                    PassageEmbedding.campaign_id == edited, PassageEmbedding.model == "fake"
                )
            )
        )
        db.session.commit()
        return found

    def expected() -> set[str]:
        return {
            hashlib.sha1(p.cache_key.encode("utf-8"), usedforsecurity=False).hexdigest()
            for p in passages(current_text())
        }

    old_text = current_text()
    edits: list[bool] = []

    def edit_and_embed_meanwhile(texts: list[str]) -> None:
        if not edits:
            edits.append(True)
            payload = campaign_payload(external_id="edited", title="会员日改为叠券召回", version=1)
            services.update_campaign(edited, validate_campaign(payload, update=True))
            indexer.store_embeddings([embedder], [current_text()])  # the edit's drain, first

    _on_encode(edit_and_embed_meanwhile)
    # The slow encoder embeds the old text; the edit's drain finishes while it encodes.
    indexer.store_embeddings([embedder], [old_text])
    assert edits
    assert stored() == expected()
