"""Dry runs write nothing; real runs create, update or leave alone, keyed by id or title + dates."""

from __future__ import annotations

import io
import json
from typing import Any

import sqlalchemy as sa
from flask import Flask

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.extensions import db
from kb.models import Campaign
from kb.transfer.imports import ImportReport, import_stream
from tests.factories import campaign_payload


def jsonl(*records: dict[str, Any]) -> io.BytesIO:
    return io.BytesIO("\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode())


def run(*records: dict[str, Any], dry_run: bool = False) -> ImportReport:
    return import_stream(jsonl(*records), filename="x.jsonl", dry_run=dry_run)


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Campaign.id))) or 0


def outcomes(report: ImportReport) -> list[str]:
    return [row.outcome for row in report.rows]


def test_a_dry_run_writes_nothing_and_predicts_the_real_run(app: Flask) -> None:
    records = [
        campaign_payload(external_id="a"),
        campaign_payload(external_id="b", title="第二个"),
        campaign_payload(external_id="a", title="同一文件里再次出现"),
        campaign_payload(external_id="c", goal_type="拉新"),
    ]
    with app.app_context():
        preview = run(*records, dry_run=True)
        assert count() == 0
        real = run(*records)
        assert count() == 2
    assert outcomes(preview) == outcomes(real) == ["created", "created", "updated", "rejected"]
    assert preview.rows[3].fields == real.rows[3].fields


def test_one_bad_row_never_sinks_the_file(app: Flask) -> None:
    with app.app_context():
        report = run(
            campaign_payload(external_id="1"),
            campaign_payload(external_id="2", start_date="2024-02-30", metrics=[{"name": ""}]),
            campaign_payload(external_id="3", title="x" * 201),
            campaign_payload(external_id="4"),
        )
        assert count() == 2
    assert report.counts == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 2}
    assert report.rows[1].row == 2
    assert report.rows[1].fields == {
        "start_date": "没有这一天：2024年2月30日",
        "metrics.0.name": "必填",
    }
    assert report.rows[2].fields == {"title": "不能超过 200 个字符"}


def test_rows_without_external_id_match_by_title_and_dates(app: Flask) -> None:
    record = campaign_payload(external_id=None)
    with app.app_context():
        assert outcomes(run(record)) == ["created"]
        assert outcomes(run(record)) == ["unchanged"]
        assert outcomes(run({**record, "lessons": "改过了"})) == ["updated"]
        assert outcomes(run({**record, "end_date": "2024-11-13"})) == ["created"]
        assert count() == 2


def test_a_file_without_ids_keeps_the_stored_external_id(app: Flask) -> None:
    with app.app_context():
        services.create_campaign(validate_campaign(campaign_payload(external_id="crm-7")))
        report = run(campaign_payload(external_id=None, lessons="新的经验"))
        campaign = db.session.scalar(sa.select(Campaign))
        assert campaign is not None
        assert (campaign.external_id, campaign.lessons) == ("crm-7", "新的经验")
    assert outcomes(report) == ["updated"]


def test_ambiguous_title_and_dates_are_rejected(app: Flask) -> None:
    record = campaign_payload(external_id=None)
    with app.app_context():
        services.create_campaign(validate_campaign(record))
        services.create_campaign(validate_campaign(record))
        report = run({**record, "lessons": "改"})
        assert count() == 2
    assert report.rows[0].fields["title"].startswith("已有 2 个同名且日期相同的活动")


def test_reimporting_brings_a_trashed_campaign_back(app: Flask) -> None:
    record = campaign_payload(external_id=None)
    with app.app_context():
        campaign = services.create_campaign(validate_campaign(record))
        services.trash_campaign(campaign.id)
        assert outcomes(run(record, dry_run=True)) == ["updated"]
        assert outcomes(run(record)) == ["updated"]
        assert services.get_campaign(campaign.id).deleted_at is None


def test_a_json_array_cut_short_keeps_what_came_before(app: Flask) -> None:
    text = json.dumps([campaign_payload(external_id="ok")], ensure_ascii=False)[:-1]
    text += ', {"title": "断了'
    with app.app_context():
        report = import_stream(io.BytesIO(text.encode()), filename="x.json")
        assert count() == 1
    assert outcomes(report) == ["created"]
    assert report.error is not None
    assert "不是合法的 JSON" in report.error


def test_json_array_items_report_position_and_line(app: Flask) -> None:
    records = [campaign_payload(external_id=str(i)) for i in range(3)]
    records[2]["goal_type"] = "nope"
    payload = json.dumps(records, ensure_ascii=False, indent=2).encode()
    with app.app_context():
        report = import_stream(io.BytesIO(payload), filename="x.json", dry_run=True)
    starts = [n for n, line in enumerate(payload.decode().splitlines(), start=1) if line == "  {"]
    bad = report.rejected[0]
    assert (bad.row, bad.line) == (3, starts[2])


def test_the_api_listing_shape_imports(app: Flask) -> None:
    listing = {"items": [campaign_payload(external_id="l-1")], "total": 1, "page": 1}
    with app.app_context():
        report = import_stream(io.BytesIO(json.dumps(listing).encode()), filename="page.json")
    assert outcomes(report) == ["created"]
