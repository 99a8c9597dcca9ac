"""Eight clients writing at once through gunicorn (2 workers): nothing accepted is lost, every
conflict is a 409, and the indexes end up holding exactly the database's campaigns (issue #5)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.factories import campaign_payload
from tests.integration.live import (
    Server,
    Store,
    app_on,
    create_token,
    index_report,
    loaded_vector_ids,
    reset_postgres,
    serving,
    wait_consistent,
)

CLIENTS = 8
WRITES = 50  # per client
SHARED = 4  # campaigns every client updates: their updates conflict
# What each client does, step by step, round and round: 15 creates, 20 updates of shared
# campaigns (read the version, then PUT it: a 409 when someone else was quicker), 5 updates with a
# version known to be stale (must be 409), 5 updates of its own campaigns (nobody else touches
# them: must succeed) and 5 moves to the trash, per client.
OWN_OFFSET = {"own": 2, "trash": 9}  # which earlier create of the round they write
PLAN = ("create", "shared", "create", "shared", "stale", "shared", "create", "shared", "own", "trash")  # fmt: skip


@dataclass
class Write:
    """One write as the client saw it."""

    client: int
    step: int
    kind: str
    campaign_id: int | None
    marker: str  # the write's `lessons` text: finds it in the database and in the history
    status: int | None = None
    version: int | None = None  # the version the reply gave, when accepted
    reply_marker: str | None = None  # the `lessons` the reply gave, when accepted
    error: str = ""

    @property
    def accepted(self) -> bool:
        return self.status in (200, 201, 204)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(tmp_path / "data")
    found = Store(tmp_path / "data", request.getfixturevalue("postgres_schema"))
    reset_postgres(found)
    return found


def _body(title: str, external_id: str, marker: str, **extra: Any) -> dict[str, Any]:
    return campaign_payload(title=title, external_id=external_id, lessons=marker, **extra)


def _shared_title(index: int) -> str:
    return f"共享活动{index}：会员日满减"


def _send(server: Server, write: Write, method: str, path: str, body: Any = None) -> None:
    try:
        reply = server.request(method, path, body)
    except OSError as exc:  # refused, reset, timed out: never acceptable
        write.error = repr(exc)
        return
    write.status = reply.status
    if reply.status in (200, 201):
        write.version = reply.body["version"]
        write.campaign_id = reply.body["id"]
        write.reply_marker = reply.body["lessons"]
    elif reply.status == 409:
        assert reply.body["error"]["code"] == "conflict", reply.body


def _client(server: Server, client: int, shared: list[int], log: list[Write]) -> None:
    created: dict[int, int] = {}  # step -> id of the campaign this client created then
    for step in range(WRITES):
        kind = PLAN[step % len(PLAN)]
        marker = f"客户{client}第{step}次写入"
        write = Write(client, step, kind, None, marker)
        if kind == "create":
            title = f"并发新建活动 客户{client} 第{step}号"
            body = _body(title, f"c{client}-{step}", marker)
            _send(server, write, "POST", "/api/v1/campaigns", body)
            if write.campaign_id is not None:
                created[step] = write.campaign_id
        elif kind in ("shared", "stale"):
            index = (client + step) % SHARED
            write.campaign_id = shared[index]
            path = f"/api/v1/campaigns/{shared[index]}"
            current = server.request("GET", path)
            assert current.status == 200, current
            version = current.body["version"] - (1 if kind == "stale" else 0)
            body = _body(_shared_title(index), f"shared-{index}", marker, version=version)
            _send(server, write, "PUT", path, body)
        elif step - OWN_OFFSET[kind] not in created:
            write.error = "skipped: its campaign was not created"
        elif kind == "own":
            # The campaign created 2 steps before: at version 1, and nobody else writes it.
            write.campaign_id = created[step - 2]
            title = f"并发新建活动 客户{client} 第{step - 2}号（已修改）"
            body = _body(title, f"c{client}-{step - 2}", marker, version=1)
            _send(server, write, "PUT", f"/api/v1/campaigns/{write.campaign_id}", body)
        else:  # trash the campaign created at step 0 of this round
            write.campaign_id = created[step - 9]
            _send(server, write, "DELETE", f"/api/v1/campaigns/{write.campaign_id}")
        log.append(write)


def _run_clients(server: Server, shared: list[int]) -> list[Write]:
    logs: list[list[Write]] = [[] for _ in range(CLIENTS)]
    failures: list[BaseException] = []
    start = threading.Barrier(CLIENTS)

    def run(client: int) -> None:
        start.wait()
        try:
            _client(server, client, shared, logs[client])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    return [write for log in logs for write in log]


def test_concurrent_writers(store: Store, tmp_path: Path) -> None:
    token = create_token(store)
    with serving(store, token, tmp_path / "gunicorn.log", workers=2, threads=4) as server:
        # Shared campaigns at version 2, so "version - 1" is always a real, stale version.
        seeds: list[Write] = []
        for index in range(SHARED):
            title = _shared_title(index)
            create = Write(-1, index, "create", None, f"共享{index}初始")
            body = _body(title, f"shared-{index}", create.marker)
            _send(server, create, "POST", "/api/v1/campaigns", body)
            assert create.status == 201, create
            update = Write(-1, index, "shared", create.campaign_id, f"共享{index}第二版")
            body = _body(title, f"shared-{index}", update.marker, version=1)
            _send(server, update, "PUT", f"/api/v1/campaigns/{create.campaign_id}", body)
            assert update.status == 200, update
            seeds += [create, update]
        shared = [w.campaign_id for w in seeds if w.kind == "create" and w.campaign_id]

        writes = _run_clients(server, shared)
        assert len(writes) == CLIENTS * WRITES
        statuses = Counter((w.kind, w.status) for w in writes)
        # The shared updates did race: both outcomes happened.
        assert statuses[("shared", 200)], statuses
        assert statuses[("shared", 409)], statuses

        # What the clients were told; collected, so the checks of the stored state still run.
        expected = {"create": {201}, "own": {200}, "trash": {204}, "stale": {409}}
        problems = [
            f"{w.kind} by client {w.client} at step {w.step}: "
            + (w.error or f"{w.status}, expected {expected.get(w.kind, {200, 409})}")
            for w in writes
            if w.error or w.status not in expected.get(w.kind, {200, 409})
        ]
        # A reply describes the write itself: not a version someone else wrote just after it (a
        # client that sends that version back would overwrite a change it never saw).
        problems += [
            f"{w.kind} by client {w.client} at step {w.step} was answered with version "
            f"{w.version} holding {w.reply_marker!r}, not its own content"
            for w in writes
            if w.accepted and w.version is not None and w.reply_marker != w.marker
        ]

        writes = seeds + writes
        _check_database(store, writes)

        # The indexer catches up: the listing the server gives is exactly the live campaigns.
        report = wait_consistent(store, timeout_s=120)
        assert report.consistent, report
        assert server.listed_ids() == set(report.live)
        for write in writes:
            if write.kind == "create" and write.client == 3:
                title = f"并发新建活动 客户{write.client} 第{write.step}号"
                found = server.finds(write.campaign_id or 0, title)
                assert found == (write.campaign_id in report.live), write
    report = index_report(store)
    assert report.consistent, report
    assert loaded_vector_ids(store) == set(report.live)
    assert problems == [], f"{statuses}\n" + "\n".join(problems)
    assert "Traceback" not in server.log, server.log[-5000:]


def _check_database(store: Store, writes: list[Write]) -> None:
    """Every accepted write is in the database and its history; no rejected one left a trace."""
    from kb.campaigns.history import snapshot_of
    from kb.extensions import db
    from kb.models import Campaign, CampaignVersion

    accepted = [w for w in writes if w.accepted]
    rejected = [w for w in writes if not w.accepted]
    with app_on(store):
        campaigns = {c.id: c for c in db.session.scalars(sa.select(Campaign))}
        history: dict[int, dict[int, CampaignVersion]] = defaultdict(dict)
        for row in db.session.scalars(sa.select(CampaignVersion)):
            assert row.version not in history[row.campaign_id], "two rows for one version"
            history[row.campaign_id][row.version] = row

        # One version row per accepted write, nothing else (no baselines: all have history).
        assert sum(len(v) for v in history.values()) == len(accepted)
        actions = Counter(row.action for rows in history.values() for row in rows.values())
        kinds = Counter(w.kind for w in accepted)
        assert actions == {
            "create": kinds["create"],
            "update": kinds["shared"] + kinds["own"],
            "trash": kinds["trash"],
        }
        created = {w.campaign_id for w in accepted if w.kind == "create"}
        assert set(campaigns) == created
        trashed = {w.campaign_id for w in accepted if w.kind == "trash"}
        assert {c.id for c in campaigns.values() if c.deleted_at is not None} == trashed

        by_campaign: dict[int, list[Write]] = defaultdict(list)
        for write in accepted:
            assert write.campaign_id is not None
            by_campaign[write.campaign_id].append(write)
        for campaign_id, campaign in campaigns.items():
            rows = history[campaign_id]
            # Versions 1..n, one per accepted write of this campaign.
            assert sorted(rows) == list(range(1, campaign.version + 1)), (campaign_id, sorted(rows))
            assert len(by_campaign[campaign_id]) == campaign.version, campaign_id
            # Each accepted create or update is one version, with the content that was sent.
            sent = sorted(w.marker for w in by_campaign[campaign_id] if w.kind != "trash")
            kept = sorted(snapshot_of(r)["lessons"] for r in rows.values() if r.action != "trash")
            assert kept == sent, campaign_id
            newest = snapshot_of(rows[campaign.version])
            assert campaign.lessons == newest["lessons"]
            assert campaign.title == newest["title"]
            assert len(campaign.metrics) == 4
            assert len(campaign.rewards) == 2
        markers = {
            snapshot_of(row)["lessons"] for rows in history.values() for row in rows.values()
        }
        assert markers.isdisjoint(w.marker for w in rejected)
        db.session.commit()
