"""The import page (upload, preview job, confirm, complete in the form) and the export links."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from werkzeug.test import TestResponse

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from kb.extensions import db
from kb.models import Campaign, ImportJob
from kb.transfer import jobs
from tests.factories import campaign_payload

Sample = Callable[[str], Path]
PostFile = Callable[..., TestResponse]


def count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Campaign.id))) or 0


def token_of(html: str) -> str:
    match = re.search(r'name="job" value="([^"]+)"', html) or re.search(
        r"/import/draft/([A-Za-z0-9_-]+)", html
    )
    assert match, html
    return match[1]


def jobs_stored(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(ImportJob.id))) or 0


def followed(client: FlaskClient, response: TestResponse) -> TestResponse:
    """Follow the redirect of an upload or confirmation to its job's page."""
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert re.fullmatch(r"/import/jobs/\d+", response.headers["Location"])
    return client.get(response.headers["Location"])


def test_the_upload_page_explains_the_formats_and_columns(client: FlaskClient) -> None:
    html = client.get("/import").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html
    assert "列名对照表" in html
    assert "目标类型" in html
    assert "goal_type" in html


def test_preview_then_confirm(
    app: Flask, client: FlaskClient, sample: Sample, post_file: PostFile
) -> None:
    preview = followed(client, post_file(client, "/import", sample("campaigns_bom.csv")))
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert count(app) == 0  # a preview writes nothing
    assert "将新建 <strong>2</strong>" in html
    assert 'class="outcome-rejected"' in html
    assert "第 7 行" in html
    assert "没有这一天：2024年2月30日" in html
    assert "已忽略不认识的列：备注、导出时间" in html
    token = token_of(html)
    assert jobs_stored(app) == 1  # the file is kept in the database, not on one host's disk

    confirmed = client.post("/import/confirm", data={"job": token})
    result = followed(client, confirmed)
    html = result.get_data(as_text=True)
    assert result.status_code == 200
    assert count(app) == 2
    assert "导入完成" in html
    assert "未导入的行" in html
    # Confirming twice (a double click) leads to the same import, not a second one.
    again = client.post("/import/confirm", data={"job": token})
    assert again.headers["Location"] == confirmed.headers["Location"]
    assert (count(app), jobs_stored(app)) == (2, 2)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.xls", b"\xd0\xcf\x11\xe0", "不支持 Excel 97-2003"),
        ("broken.xlsx", b"PK\x03\x04 not a zip", "无法读取 Excel 文件"),
        ("empty.csv", "只有一行说明\n".encode(), "找不到表头"),
    ],
)
def test_unreadable_files_are_explained(
    app: Flask,
    client: FlaskClient,
    tmp_path: Path,
    post_file: PostFile,
    name: str,
    data: bytes,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    response = post_file(client, "/import", path)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert jobs_stored(app) == 0


def test_no_file_and_bad_tokens(client: FlaskClient) -> None:
    assert client.post("/import", data={}).status_code == 422
    assert client.post("/import/confirm", data={"job": "../../etc"}).status_code == 410
    assert client.post("/import/confirm", data={"job": "999"}).status_code == 410
    assert client.get("/import/jobs/999").status_code == 404
    response = client.get("/import/draft/not-a-token")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/import")


def test_an_old_preview_cannot_be_confirmed(
    app: Flask, client: FlaskClient, sample: Sample, post_file: PostFile
) -> None:
    token = token_of(
        followed(client, post_file(client, "/import", sample("campaigns.json"))).get_data(
            as_text=True
        )
    )
    with app.app_context():
        job = db.session.get(ImportJob, int(token))
        assert job is not None
        assert job.finished_at is not None
        job.finished_at -= timedelta(seconds=jobs.PREVIEW_TTL_S + 5)
        db.session.commit()
    assert client.post("/import/confirm", data={"job": token}).status_code == 410
    assert count(app) == 0


def test_the_progress_page_works_without_script(app: Flask, client: FlaskClient) -> None:
    app.config["IMPORT_INLINE"] = False  # left queued, as while a worker is busy
    with app.app_context():
        job_id = jobs.enqueue(b"title\n", filename="a.csv", fmt="csv").id
    html = client.get(f"/import/jobs/{job_id}").get_data(as_text=True)
    assert "排队中" in html
    assert f'href="/import/jobs/{job_id}">刷新</a>' in html
    assert 'src="/static/js/imports.js"' in html
    progress = client.get(f"/import/jobs/{job_id}/progress").get_json()
    assert progress == {
        "state": "queued",
        "label": "排队中",
        "rows_read": 0,
        "rows_rejected": 0,
        "percent": 0,
        "ended": False,
    }
    with app.app_context():
        assert jobs.run_pending() == 1
    assert client.get(f"/import/jobs/{job_id}/progress").get_json()["ended"] is True
    assert "导入完成" in client.get(f"/import/jobs/{job_id}").get_data(as_text=True)


def test_a_word_retro_is_completed_in_the_form(
    app: Flask, client: FlaskClient, sample: Sample, post_file: PostFile
) -> None:
    preview = followed(client, post_file(client, "/import", sample("retro_double11.docx")))
    html = preview.get_data(as_text=True)
    assert "在表单中补全并保存" in html
    assert "<strong>行业</strong>：必填" in html  # the field by its Chinese name, no code beside it
    assert "<code>industry</code>" not in html
    token = token_of(html)

    form = client.get(f"/import/draft/{token}").get_data(as_text=True)
    assert 'value="2024 双十一 沉睡会员召回 复盘报告"' in form
    assert 'value="2024-10-20"' in form
    assert "连续订购立减" in form
    assert "有 1 处需要修改" in form

    inputs = re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)
    fields = {name: value for name, value in inputs if not name.endswith("-delete")}
    fields.update(
        {
            "title": "2024 双十一 沉睡会员召回 复盘报告",
            "industry": "电商",
            "department": "会员运营中心",
            "goal_type": "reactivation",
            "start_date": "2024-10-20",
            "end_date": "2024-11-12",
            "status": "completed",
            "documents-0-title": "2024 双十一 沉睡会员召回 复盘报告（Word 原文）",
            "documents-0-kind": "strategy",
            "documents-0-body": "# 原文",
        }
    )
    saved = client.post(f"/import/draft/{token}", data=fields)
    assert saved.status_code == 302
    with app.app_context():
        campaign = db.session.scalar(sa.select(Campaign))
        assert campaign is not None
        assert (campaign.industry, campaign.documents[0].kind) == ("电商", "strategy")
        assert saved.headers["Location"].endswith(f"/campaigns/{campaign.id}")


def test_a_draft_form_with_errors_is_shown_again(
    client: FlaskClient, sample: Sample, post_file: PostFile
) -> None:
    token = token_of(
        followed(client, post_file(client, "/import", sample("retro_double11.docx"))).get_data(
            as_text=True
        )
    )
    response = client.post(f"/import/draft/{token}", data={"title": "只有标题"})
    assert response.status_code == 422
    assert 'value="只有标题"' in response.get_data(as_text=True)


@pytest.fixture
def seeded(app: Flask) -> dict[str, int]:
    with app.app_context():
        ids = {}
        for payload in (
            campaign_payload(external_id="e-1", industry="电商", title="=SUM(A1) 电商大促"),
            campaign_payload(external_id="e-2", industry="母婴", title="母婴拼团"),
            campaign_payload(
                external_id="e-3", industry="电商", title="电商回收站", goal_type="gmv"
            ),
        ):
            ids[payload["external_id"]] = services.create_campaign(validate_campaign(payload)).id
        services.trash_campaign(ids["e-3"])
        return ids


def test_list_export_honours_filters(client: FlaskClient, seeded: dict[str, int]) -> None:
    response = client.get("/campaigns/export.csv?industry=电商&status=bogus")
    text = response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert text.startswith("\ufeff外部编号,活动名称")
    assert "'=SUM(A1) 电商大促" in text  # neutralized for spreadsheets
    assert "母婴拼团" not in text
    assert "电商回收站" not in text
    assert client.get("/campaigns/export.pdf").status_code == 404


def test_xlsx_export_keeps_numbers_and_neutralizes_text(
    client: FlaskClient, seeded: dict[str, int], tmp_path: Path
) -> None:
    path = tmp_path / "out.xlsx"
    path.write_bytes(client.get("/campaigns/export.xlsx").data)
    workbook = load_workbook(path)
    main, metrics = workbook["活动"], workbook["指标"]
    titles = [row[1] for row in main.iter_rows(min_row=2, values_only=True)]
    assert "=SUM(A1) 电商大促" in titles  # a string cell: never run, shown without a quote
    assert main.cell(1, 1).value == "外部编号"
    values = next(metrics.iter_rows(min_row=2, values_only=True))
    assert values[3:8] == ("成交额", "万元", 820, 1000, 1130.5)


def test_one_campaign_as_markdown_and_as_a_printable_page(
    client: FlaskClient, seeded: dict[str, int]
) -> None:
    response = client.get(f"/campaigns/{seeded['e-2']}/export.md")
    text = response.get_data(as_text=True)
    assert response.mimetype == "text/markdown"
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    assert text.startswith("---\n活动名称: 母婴拼团\n")
    assert "## 做得好的 {#went_well}" in text
    page = client.get(f"/campaigns/{seeded['e-2']}/print").get_data(as_text=True)
    assert "<h1>母婴拼团</h1>" in page
    assert "数据成效" in page
    assert "data-print" in page
    assert client.get(f"/campaigns/{seeded['e-3']}/print").status_code == 404
    assert client.get("/campaigns/999/export.md").status_code == 404
