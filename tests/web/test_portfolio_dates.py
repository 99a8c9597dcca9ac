"""The portfolio's period is typed as a team writes dates and shown in 年月日, not a date picker."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def test_period_boxes_show_and_take_chinese_dates(client: FlaskClient) -> None:
    page = client.get(
        "/portfolio", query_string={"date_from": "2025年3月1日", "date_to": "2025/6/30"}
    ).get_data(as_text=True)
    boxes = dict(re.findall(r'<input name="(date_from|date_to)" value="([^"]*)"', page))
    assert boxes == {"date_from": "2025年3月1日", "date_to": "2025年6月30日"}
    assert 'type="date"' not in page  # a picker shows 03/01/2025 on an English system
    assert "（2025年3月1日 至 2025年6月30日）" in page
    # What the boxes hold is sent back as it is shown, and read the same.
    again = client.get("/portfolio", query_string=boxes).get_data(as_text=True)
    assert "（2025年3月1日 至 2025年6月30日）" in again
