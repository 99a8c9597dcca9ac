"""Crashes (SIGKILL) of the server and of ``flask --app kb reindex``: the database keeps every
acknowledged write and stays intact, and after a restart the indexes agree with it again."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kb import ROOT
from tests.factories import campaign_payload
from tests.integration.live import (
    Server,
    Store,
    app_on,
    create_token,
    index_report,
    loaded_vector_ids,
    outbox_size,
    reset_postgres,
    serving,
    sqlite_integrity,
    wait_consistent,
    wait_until,
)


def _assert_consistent_after_restart(
    store: Store, token: str, log: Path, titles: dict[int, str], *, workers: int = 1
) -> None:
    """Restart the server; the indexes must come to hold exactly the live campaigns."""
    with serving(store, token, log, workers=workers) as server:
        report = wait_consistent(store, timeout_s=120)
        assert report.consistent, report
        assert server.listed_ids() == set(report.live)
        # Keyword search finds the titles (a sample: each search costs while workers warm up).
        sample = sorted(titles)[:: max(1, len(titles) // 8)]
        missed = {cid: titles[cid] for cid in sample if not server.finds(cid, titles[cid])}
        assert missed == {}, "keyword search misses these titles"
        assert all(server.finds(cid, titles[cid], mode="semantic") for cid in sample[:3])
    assert loaded_vector_ids(store) == set(report.live)
    assert "Traceback" not in server.log, server.log[-5000:]


def test_killed_server_heals_index_on_restart(tmp_path: Path) -> None:
    """Killed between commit and index (the models still loading): the index heals at start."""
    store = Store(tmp_path / "data")
    token = create_token(store)
    titles = [f"沉睡会员召回第{i}期" for i in range(5)]
    with serving(
        store, token, tmp_path / "gunicorn.log", workers=1, index_interval_s=3600
    ) as server:
        for i, title in enumerate(titles):
            body = campaign_payload(title=title, external_id=f"crash-{i}")
            assert server.request("POST", "/api/v1/campaigns", body).status == 201
        # The background indexer is still loading its model: these writes are committed but
        # not yet indexed when the server dies.
        assert outbox_size(store) > 0
    with serving(
        store, token, tmp_path / "gunicorn.log", workers=1, index_interval_s=3600
    ) as server:

        def all_indexed() -> bool:
            found = server.get("/api/v1/search", q="沉睡会员召回", mode="keyword")
            return bool(found["total"] == len(titles))

        wait_until(all_indexed, timeout_s=120, what="all indexed")
        wait_until(lambda: outbox_size(store) == 0, timeout_s=60, what="outbox drained")
        listing = server.get("/api/v1/search", q="", limit=100)
        assert sorted(r["title"] for r in listing["results"]) == sorted(titles)
        semantic = server.get("/api/v1/search", q="沉睡会员召回", mode="semantic")
        assert {r["title"] for r in semantic["results"]} == set(titles)


@dataclass
class Acked:
    """A write the server acknowledged: it must survive the crash."""

    campaign_id: int
    version: int
    title: str
    marker: str


def _writer(server: Server, writer: int, acked: list[Acked], stop: threading.Event) -> list[str]:
    """Create campaigns (and update every other one) until stopped or the server is gone."""
    problems: list[str] = []
    step = 0
    while not stop.is_set():
        step += 1
        title = f"断电前写入 {writer}号 第{step}条"
        marker = f"写入者{writer}第{step}次"
        body = campaign_payload(title=title, external_id=f"w{writer}-{step}", lessons=marker)
        try:
            reply = server.request("POST", "/api/v1/campaigns", body)
            if reply.status != 201:
                problems.append(f"POST {reply.status}: {reply.body}")
                continue
            created = reply.body
            acked.append(Acked(created["id"], created["version"], title, marker))
            if step % 2:
                continue
            title += "（改）"
            marker += "改"
            body.update(title=title, lessons=marker, version=created["version"])
            reply = server.request("PUT", f"/api/v1/campaigns/{created['id']}", body)
            if reply.status != 200:
                problems.append(f"PUT {reply.status}: {reply.body}")
                continue
            acked.append(Acked(created["id"], reply.body["version"], title, marker))
        except (OSError, http.client.HTTPException):
            # The server is gone (also mid-reply: IncompleteRead): this write's outcome is unknown.
            return problems
    return problems


def test_killed_in_a_stream_of_writes(tmp_path: Path) -> None:
    """SIGKILL while four clients write and the indexer drains: nothing acknowledged is lost."""
    store = Store(tmp_path / "data")
    token = create_token(store)
    log = tmp_path / "gunicorn.log"
    server = Server(store, token, log, workers=1, threads=4)
    acked: list[Acked] = []
    problems: list[str] = []
    stop = threading.Event()
    try:
        server.wait_ready()
        # First let the indexer load its model, so it is busy indexing when the server dies.
        warm = server.request("POST", "/api/v1/campaigns", campaign_payload(title="预热活动"))
        assert warm.status == 201
        wait_until(lambda: outbox_size(store) == 0, timeout_s=90, what="indexer warmed up")

        def run(writer: int) -> None:
            problems.extend(_writer(server, writer, acked, stop))

        threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        # Killed with writes in flight and the indexer behind (the outbox not empty).
        wait_until(
            lambda: len(acked) >= 30 and outbox_size(store) > 0,
            timeout_s=60,
            what="30 writes acknowledged, some not yet indexed",
        )
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        stop.set()
        server.kill()
    assert problems == []

    assert sqlite_integrity(store) == "ok"
    _check_acknowledged(store, acked)
    titles = {a.campaign_id: a.title for a in acked}  # the newest title of each
    # Two workers start together on the crashed state (both reconcile; one drains at a time).
    _assert_consistent_after_restart(store, token, log, titles, workers=2)


def _check_acknowledged(store: Store, acked: list[Acked]) -> None:
    """Each acknowledged write is a version with its content; every campaign is whole."""
    from kb.campaigns.history import snapshot_of
    from kb.extensions import db
    from kb.models import Campaign, CampaignVersion

    with app_on(store):
        history = {
            (row.campaign_id, row.version): snapshot_of(row)
            for row in db.session.scalars(sa.select(CampaignVersion))
        }
        for write in acked:
            snapshot = history.get((write.campaign_id, write.version))
            assert snapshot is not None, f"acknowledged write lost: {write}"
            assert (snapshot["title"], snapshot["lessons"]) == (write.title, write.marker)
        for campaign in db.session.scalars(sa.select(Campaign)):
            # A write cut off by the kill is there entirely or not at all.
            versions = sorted(v for cid, v in history if cid == campaign.id)
            assert versions == list(range(1, campaign.version + 1)), campaign.id
            assert campaign.lessons == history[(campaign.id, campaign.version)]["lessons"]
            kept = (len(campaign.rewards), len(campaign.metrics), len(campaign.documents))
            assert kept == (2, 4, 1), campaign.id
        db.session.commit()


CAMPAIGNS = 40
# `flask --app kb reindex` exactly, but embedding 10 campaigns per committed batch instead of 500:
# several batches (one committed, the next being embedded when killed) from few campaigns.
REINDEX = "import sys, kb.searching.indexer, flask.cli; kb.searching.indexer.REBUILD_BATCH = 10; sys.exit(flask.cli.main())"


def _seed(store: Store) -> dict[int, str]:
    """Campaigns stored in-process, a keyword index of an older state, then changes it lacks.

    Returns the live campaigns' titles.
    """
    from kb.campaigns import services
    from kb.campaigns.schemas import validate_campaign
    from kb.campaigns.serialize import campaign_to_input
    from kb.searching import indexer

    with app_on(store, migrate=True):
        ids = [
            services.create_campaign(
                validate_campaign(
                    campaign_payload(
                        title=f"重建索引活动{i}号", external_id=f"r{i}", lessons=f"经验{i}"
                    )
                )
            ).id
            for i in range(CAMPAIGNS)
        ]
        indexer._rebuild_keyword(indexer.get_indexes())  # no model needed for this part
        for campaign_id in ids[:5]:
            services.trash_campaign(campaign_id)
        for campaign_id in ids[5:15]:
            data = campaign_to_input(services.get_campaign(campaign_id))
            data["title"] = data["title"].replace("重建索引活动", "改名后的活动")
            services.update_campaign(campaign_id, validate_campaign(data))
        return {campaign_id: services.get_campaign(campaign_id).title for campaign_id in ids[5:]}


def _keyword_dirs(store: Store) -> set[str]:
    directory = store.data_dir / "index" / "keyword"
    return {p.name for p in directory.iterdir() if p.is_dir()} if directory.exists() else set()


def _embedded(store: Store) -> int:
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as connection:
            query = "SELECT count(DISTINCT campaign_id) FROM passage_embedding"
            count: int = connection.execute(sa.text(query)).scalar_one()
            return count
    finally:
        engine.dispose()


def _reindex_until_killed(store: Store, log: Path, reached: Callable[[], bool]) -> None:
    """Run the reindex command and SIGKILL it as soon as ``reached()``; it must still be running."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", REINDEX, "--app", "kb", "reindex"],
            cwd=ROOT,
            env=store.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not reached() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, f"reindex ended before the kill: {log.read_text()}"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL


def test_killed_during_reindex(tmp_path: Path) -> None:
    """SIGKILL ``flask --app kb reindex`` while it embeds, then again while it writes the new
    keyword index: the database is untouched and the restarted server brings the index in line."""
    store = Store(tmp_path / "data")
    titles = _seed(store)
    token = create_token(store)
    before = _state(store)
    log = tmp_path / "reindex.log"

    # 1. Killed with the first batch of embeddings committed and the next one being embedded.
    _reindex_until_killed(store, log, lambda: _embedded(store) > 0)
    assert sqlite_integrity(store) == "ok"
    assert _state(store) == before  # a rebuild never changes a campaign
    report = index_report(store)
    assert report.vectors_missing, "killed too late: every campaign was embedded"
    assert report.keyword_wrong  # the old keyword index, still in use

    # 2. Killed while the new keyword index is written (the old one stays current).
    old_dirs = _keyword_dirs(store)
    _reindex_until_killed(store, log, lambda: bool(_keyword_dirs(store) - old_dirs))
    assert sqlite_integrity(store) == "ok"
    assert _state(store) == before
    report = index_report(store)
    assert report.keyword_wrong  # the new index never went live

    _assert_consistent_after_restart(store, token, tmp_path / "gunicorn.log", titles)


def _state(store: Store) -> dict[int, Any]:
    from kb.extensions import db
    from kb.models import Campaign

    with app_on(store):
        rows = db.session.execute(sa.select(Campaign.id, Campaign.version, Campaign.deleted_at))
        state = {cid: (version, deleted is None) for cid, version, deleted in rows}
        db.session.commit()
        return state


# An import job killed mid-run: rows are committed in batches with their report, so after the
# kill the report names exactly the rows written, and the restarted server resumes the job.
IMPORT_ROWS = 1_500
IMPORT_BAD_EVERY = 100  # rows with an unknown goal type: rejected, never written


def _post_import(server: Server, data: bytes, filename: str) -> dict[str, Any]:
    """POST /api/v1/imports with the file as multipart/form-data; return the queued job."""
    import json
    import urllib.request

    boundary = "kb-crash-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(  # noqa: S310  # the local test server
        server.url + "/api/v1/imports",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {server.token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        assert response.status == 202
        job: dict[str, Any] = json.loads(response.read())
        return job


def _import_state(store: Store, job_id: int) -> dict[str, Any]:
    """The job, its report rows and the campaigns in the database, read as a new worker would."""
    from kb.extensions import db
    from kb.models import Campaign, CampaignVersion, ImportJob, ImportJobRow

    with app_on(store):
        job = db.session.get(ImportJob, job_id)
        assert job is not None
        report = db.session.execute(
            sa.select(ImportJobRow.row, ImportJobRow.outcome, ImportJobRow.title)
            .where(ImportJobRow.job_id == job_id)
            .order_by(ImportJobRow.row)
        ).all()
        campaigns = db.session.execute(
            sa.select(Campaign.id, Campaign.title, Campaign.lessons)
        ).all()
        versions = db.session.execute(
            sa.select(CampaignVersion.campaign_id, CampaignVersion.action)
        ).all()
        state = {
            "state": job.state,
            "attempts": job.attempts,
            "rows_read": job.rows_read,
            "rows_written": job.rows_written,
            "rows_rejected": job.rows_rejected,
            "error": job.error,
            "report": [(r.row, r.outcome, r.title) for r in report],
            "campaigns": [(c.id, c.title, c.lessons) for c in campaigns],
            "versions": [(v.campaign_id, v.action) for v in versions],
        }
        db.session.commit()
    return state


def _assert_report_matches_database(state: dict[str, Any]) -> None:
    """Each reported row once and in order; written rows are the campaigns, whole, each once."""
    report = state["report"]
    assert [row for row, _, _ in report] == list(range(2, 2 + len(report)))  # header is row 1
    assert len(report) == state["rows_read"]
    written = [title for _, outcome, title in report if outcome == "created"]
    rejected = [row for row, outcome, _ in report if outcome == "rejected"]
    assert (len(written), len(rejected)) == (state["rows_written"], state["rows_rejected"])
    assert rejected == [n + 1 for n in range(IMPORT_BAD_EVERY, len(report) + 1, IMPORT_BAD_EVERY)]
    titles = [title for _, title, _ in state["campaigns"]]
    assert sorted(titles) == sorted(written), "the report and the database disagree"
    assert len(set(titles)) == len(titles), "a row was written twice"
    for _, title, lessons in state["campaigns"]:
        number = int(title.split()[1].split("：")[0])
        assert lessons.endswith(f" {number}"), (title, lessons)  # whole: the row's own text
    assert sorted(cid for cid, action in state["versions"]) == sorted(
        cid for cid, _, _ in state["campaigns"]
    )
    assert {action for _, action in state["versions"]} <= {"create", "import"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def import_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A store on SQLite or on the emptied PostgreSQL test database (import jobs included)."""
    from kb.extensions import db

    if request.param == "sqlite":
        return Store(tmp_path / "data")
    store = Store(tmp_path / "data", request.getfixturevalue("postgres_schema"))
    reset_postgres(store)
    with app_on(store), db.engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE import_job_row, import_job RESTART IDENTITY CASCADE")
    return store


def test_killed_during_an_import_job(import_store: Store, tmp_path: Path) -> None:
    """SIGKILL while an import job writes its batches: the report names exactly the rows in the
    database; the restarted server resumes the job after its last committed batch."""
    from kb.extensions import db
    from kb.models import ImportJob, utcnow
    from kb.transfer import jobs
    from tests.transfer.test_import_jobs import csv_rows

    store = import_store
    token = create_token(store)
    log = tmp_path / "gunicorn.log"
    server = Server(store, token, log, workers=1, threads=4)
    try:
        server.wait_ready()
        data = csv_rows(IMPORT_ROWS, bad_every=IMPORT_BAD_EVERY, prefix="断电导入")
        job_id = int(_post_import(server, data, "crash.csv")["id"])

        def two_batches_committed() -> bool:
            with app_on(store):
                job = db.session.get(ImportJob, job_id)
                read = job.rows_read if job is not None else 0
                db.session.commit()
            return read >= 2 * jobs.BATCH_ROWS

        wait_until(two_batches_committed, timeout_s=180, what="two batches committed")
        server.kill()
    finally:
        server.kill()

    killed = _import_state(store, job_id)
    assert killed["state"] == "running", killed  # left by the dead worker, not finished
    assert killed["rows_read"] < IMPORT_ROWS, "killed too late: the job had ended"
    assert killed["rows_read"] % jobs.BATCH_ROWS == 0  # whole batches only
    _assert_report_matches_database(killed)
    if store.is_sqlite:
        assert sqlite_integrity(store) == "ok"

    # Its heartbeat goes stale after jobs.STALE_S; the test moves it back instead of waiting.
    with app_on(store):
        db.session.execute(
            sa.update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=jobs.STALE_S + 60))
        )
        db.session.commit()
    with serving(store, token, log, workers=1) as restarted:

        def ended() -> bool:
            job = restarted.get(f"/api/v1/imports/{job_id}")
            return job["state"] in ("done", "failed")

        wait_until(ended, timeout_s=300, what="the import job resumed and ended")
        answer = restarted.get(f"/api/v1/imports/{job_id}")
    final = _import_state(store, job_id)
    assert final["state"] == "done", final["error"]
    assert final["attempts"] == 2  # the first run, then the resumed one
    assert final["rows_read"] == IMPORT_ROWS
    _assert_report_matches_database(final)
    assert final["report"][: killed["rows_read"]] == killed["report"]  # kept, not redone
    assert answer["report"]["counts"]["created"] == IMPORT_ROWS - IMPORT_ROWS // IMPORT_BAD_EVERY
    assert "Traceback" not in log.read_text(errors="replace")
