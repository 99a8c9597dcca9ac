"""The import preview shows each row's values as read, and a warning per value left empty
(issue 16: "实际 abc" vanished unseen; was "12" under 预算（万元） read as 120,000 元?)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kb.extensions import db
from kb.models import Campaign

PostFile = Callable[..., TestResponse]

CSV = (
    "活动名称,行业,部门,目标类型,开始日期,结束日期,预算（万元）,GMV_基线,GMV_目标,GMV_实际,ROI_实际\n"
    "夜宵节,本地生活,外卖事业部,GMV,2024/7/15,2024年8月15日,12,2000,2800,3150,1:2.4\n"
    "早餐节,本地生活,外卖事业部,GMV,2024-09-01,2024-09-10,5,100,120,abc,约 2\n"
)


def _preview(client: FlaskClient, tmp_path: Path, post_file: PostFile) -> str:
    path = tmp_path / "values.csv"
    path.write_text(CSV, encoding="utf-8")
    response = post_file(client, "/import", path)
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _row(html: str, number: int) -> str:
    rows = re.findall(r"<tr class=\"outcome-[a-z]+\">(.*?)</tr>", html, re.S)
    found = [r for r in rows if f"第 {number} 行" in r]
    assert len(found) == 1, rows
    return found[0]


def test_an_import_with_unparseable_values_warns_per_value_and_keeps_the_rest(
    app: Flask, client: FlaskClient, tmp_path: Path, post_file: PostFile
) -> None:
    html = _preview(client, tmp_path, post_file)
    second = _row(html, 3)
    # One warning per value left empty, on its row, in the words of the issue.
    assert "第 3 行 GMV 实际值 “abc” 无法识别为数字，已留空" in second
    assert "第 3 行 ROI 实际值 “约 2” 无法识别为数字，已留空" in second
    # The row's other values are kept: it will still be created, with what could be read.
    assert "将新建" in second
    assert "5 万元" in second
    assert "2024年9月1日 至 2024年9月10日" in second
    assert re.search(r"基线 100，目标 120，实际 <span class=\"muted\">空</span>", second)
    # Not repeated in the file-level warnings above the table.
    assert html.count("GMV 实际值 “abc”") == 1

    first = _row(html, 2)
    assert "无法识别" not in first
    assert "12 万元" in first  # "12" under 预算（万元）…
    assert "120,000 元" in first  # …read as 120,000 元
    assert "2024年7月15日 至 2024年8月15日" in first
    assert "基线 2,000，目标 2,800，实际 3,150" in first
    assert "实际 2.4" in first

    # Confirmed, the row is written with its readable values and the unreadable one empty.
    token = re.search(r'name="job" value="(\d+)"', html)
    assert token
    client.post("/import/confirm", data={"job": token[1]})
    with app.app_context():
        campaign = db.session.scalars(sa.select(Campaign).where(Campaign.title == "早餐节")).one()
        gmv = next(m for m in campaign.metrics if m.name == "GMV")
        assert (gmv.baseline, gmv.target, gmv.actual) == (100, 120, None)
        assert campaign.budget_cny == 50_000
