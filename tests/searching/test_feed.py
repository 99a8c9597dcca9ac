"""The change feed followed by several hosts on one database (two data dirs in one process)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from kb import outbox
from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.extensions import db
from kb.models import IndexHost, IndexOutbox, PassageEmbedding, utcnow
from kb.searching import feed, indexer
from search.keyword import SearchFilters
from tests.conftest import TABLES, make_app
from tests.factories import campaign_payload


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hosts(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Flask, Flask]:
    """Two hosts (own data dirs, own host ids) on one database; writes are only queued."""
    first = make_app(
        tmp_path / "a",
        request.getfixturevalue("postgres_schema") if request.param == "postgresql" else None,
        INDEX_SYNC=False,
    )
    url = first.config["DATABASE_URL"]
    if request.param == "postgresql":
        with first.app_context(), db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    second = make_app(tmp_path / "b", url, INDEX_SYNC=False)
    return first, second


def _create(app: Flask, **overrides: Any) -> int:
    overrides.setdefault("external_id", overrides.get("title"))
    with app.test_request_context():
        return services.create_campaign(validate_campaign(campaign_payload(**overrides))).id


def _drain(app: Flask) -> None:
    with app.app_context():
        indexer.drain()


def _keyword_ids(app: Flask, query: str) -> list[int]:
    with app.app_context():
        result = indexer.get_indexes().keyword.search(query, filters=SearchFilters(), limit=20)
        return [hit.campaign_id for hit in result.hits]


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_every_host_applies_every_entry_and_embeddings_are_computed_once(
    hosts: tuple[Flask, Flask],
) -> None:
    first, second = hosts
    with first.app_context():
        first_id = feed.host_id()
    with second.app_context():
        assert feed.host_id() != first_id  # one machine, two data dirs: two hosts
    _drain(second)  # known before the write: the first host's prune must keep the entry for it
    campaign_id = _create(first, title="蓝莓拼团小程序")
    _drain(first)
    with first.app_context():
        embedded = db.session.scalar(sa.select(sa.func.max(PassageEmbedding.id)))
        assert embedded is not None
        assert _count(first, IndexOutbox) == 1
    _drain(second)
    # The second host applied the entry the first had already applied (a queue would have
    # lost it), and reused the first host's embeddings instead of computing its own.
    assert _keyword_ids(second, "蓝莓拼团") == [campaign_id]
    with second.app_context():
        assert db.session.scalar(sa.select(sa.func.max(PassageEmbedding.id))) == embedded
        assert campaign_id in indexer.get_indexes().vectors["fake"].campaigns()
        # Both hosts passed the entry and its embeddings are stored: it is pruned.
        feed.prune()
        assert outbox.pruned_upto() == feed.head() >= 1
    assert _count(first, IndexOutbox) == 0


def test_an_entry_is_kept_until_every_live_host_has_passed_it(hosts: tuple[Flask, Flask]) -> None:
    first, second = hosts
    _drain(second)  # the second host is known (and alive) before the write
    _create(first, title="榴莲快闪店")
    _drain(first)
    with first.app_context():
        assert feed.prune() == 0  # the second host has not applied it yet
    _drain(second)
    with first.app_context():
        assert feed.prune() == 1


def test_a_host_away_too_long_stops_holding_entries_and_catches_up_when_back(
    hosts: tuple[Flask, Flask],
) -> None:
    first, second = hosts
    early = _create(first, title="蓝莓拼团")
    _drain(second)
    _drain(first)
    with first.app_context():
        # The second host was last seen two days ago: it no longer holds entries back.
        db.session.execute(
            sa.update(IndexHost)
            .where(IndexHost.host_id != feed.host_id())
            .values(seen_at=utcnow() - timedelta(days=2))
        )
        db.session.commit()
    late = _create(first, title="榴莲快闪")
    with first.test_request_context():
        services.trash_campaign(early)
    _drain(first)
    with first.app_context():
        assert feed.prune() >= 2
        assert outbox.pruned_upto() > 0
    # Its mark is below the pruned mark: it compares itself with the database instead.
    _drain(second)
    assert _keyword_ids(second, "榴莲快闪") == [late]
    assert _keyword_ids(second, "蓝莓拼团") == []
    with second.app_context():
        assert feed.keyword_seq() == feed.head()


def test_a_new_host_bootstraps_from_the_database_alone(
    hosts: tuple[Flask, Flask], tmp_path: Path
) -> None:
    first, _ = hosts
    campaign_id = _create(first, title="沉睡会员召回")
    _drain(first)
    with first.app_context():
        feed.prune()
    assert _count(first, IndexOutbox) == 0  # nothing left in the feed to replay
    third = make_app(tmp_path / "c", first.config["DATABASE_URL"], INDEX_SYNC=False)
    _drain(third)
    assert _keyword_ids(third, "沉睡会员") == [campaign_id]


def test_a_database_gone_back_makes_the_host_catch_up(hosts: tuple[Flask, Flask]) -> None:
    first, _ = hosts
    _create(first, title="会员日预热")
    _drain(first)
    with first.app_context():
        index_dir = indexer.get_indexes().index_dir
        feed.write_mark(index_dir, feed.head() + 50)  # as after restoring an older backup
    later = _create(first, title="榴莲快闪")
    _drain(first)
    assert _keyword_ids(first, "榴莲快闪") == [later]


def test_a_lost_data_dir_is_rebuilt_on_the_same_host(hosts: tuple[Flask, Flask]) -> None:
    first, _ = hosts
    campaign_id = _create(first, title="双十一预售")
    _drain(first)
    indexes = first.extensions.pop("kb.indexes")
    indexes.keyword.close()
    shutil.rmtree(indexes.index_dir)
    _drain(first)
    assert _keyword_ids(first, "双十一预售") == [campaign_id]


def test_an_expired_claim_is_taken_over_by_another_host(hosts: tuple[Flask, Flask]) -> None:
    first, second = hosts
    campaign_id = _create(first, title="会员日")
    with first.app_context():
        claim = feed.claim_embeddings(4)  # then the first host dies
        assert claim is not None
        assert claim.campaign_ids == (campaign_id,)
    with second.app_context():
        assert feed.claim_embeddings(4) is None  # a live claim is left alone
        db.session.execute(sa.update(IndexOutbox).values(claimed_until=utcnow()))
        db.session.commit()
    _drain(second)
    with second.app_context():
        assert feed.embedded_upto() == feed.head()
        assert campaign_id in indexer.get_indexes().vectors["fake"].campaigns()


@pytest.mark.postgres
def test_entries_become_visible_in_id_order_on_postgresql(
    postgres_schema: str, tmp_path: Path
) -> None:
    """A transaction that added its entry first but commits last gets the higher id."""
    app = make_app(tmp_path, postgres_schema, INDEX_SYNC=False)
    with app.app_context():
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        slow = db.session
        slow.add(IndexOutbox(campaign_id=1))
        slow.flush()  # the slow writer's other work; its entry waits for the commit
        other = sa.orm.Session(db.engine)
        other.add(IndexOutbox(campaign_id=2))
        other.commit()
        other.close()
        slow.commit()
        order = list(
            db.session.scalars(sa.select(IndexOutbox.campaign_id).order_by(IndexOutbox.id))
        )
        assert order == [2, 1]
