"""The edit form shows a campaign's dates as every page writes them (年月日), and saves them back."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.factories import campaign_payload
from tests.test_pages import form_data


def test_edit_form_shows_dates_in_chinese_and_saves_them_unchanged(client: FlaskClient) -> None:
    created = client.post("/api/v1/campaigns", json=campaign_payload())  # 2024-10-20 … 2024-11-12
    campaign_id = created.get_json()["id"]
    page = client.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    shown = dict(re.findall(r'name="(start_date|end_date)" value="([^"]*)"', page))
    assert shown == {"start_date": "2024年10月20日", "end_date": "2024年11月12日"}
    assert "2024-10-20" not in page
    # Saved as shown: the same dates, read back from 年月日.
    response = client.post(f"/campaigns/{campaign_id}/edit", data=form_data(version="1", **shown))
    assert response.status_code == 302
    stored = client.get(f"/api/v1/campaigns/{campaign_id}").get_json()
    assert (stored["start_date"], stored["end_date"]) == ("2024-10-20", "2024-11-12")
