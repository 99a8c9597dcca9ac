"""The playbook index at /playbooks, and the form's campaign picker (issue 16: /playbooks was a
404; supporting and contradicting campaigns were typed as numbers from the URL)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from kb.campaigns import services
from kb.campaigns.schemas import validate_campaign
from tests.factories import campaign_payload


def _campaign(app: Flask, **overrides: Any) -> int:
    with app.app_context():
        return services.create_campaign(validate_campaign(campaign_payload(**overrides))).id


def test_the_index_lists_every_playbook_with_its_campaigns(
    insights_app: Flask, insights_client: FlaskClient
) -> None:
    night = _campaign(insights_app, external_id="n1", title="外卖夜宵节：满减叠加会员红包")
    spring = _campaign(insights_app, external_id="s1", title="春季拼团")
    for title, theme, supporting, contradicting in (
        ("多券叠加必须有最低成交价护栏", "risk", [night], [spring]),
        ("拼团先做团长", "audience", [spring], []),
    ):
        created = insights_client.post(
            "/api/v1/playbooks",
            json={"title": title, "theme": theme, "body": "做法", "supporting_ids": supporting,
                  "contradicting_ids": contradicting},
        )  # fmt: skip
        assert created.status_code == 201, created.get_json()

    page = insights_client.get("/playbooks")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<h1>打法</h1>" in html
    assert "共 2 条打法" in html
    entry = html.split("多券叠加必须有最低成交价护栏", 1)[1].split("拼团先做团长", 1)[0]
    assert "支持（1）" in entry
    assert "外卖夜宵节：满减叠加会员红包" in entry
    assert "反例（1）" in entry
    assert "春季拼团" in entry

    risk = insights_client.get("/playbooks?theme=risk").get_data(as_text=True)
    assert "共 1 条打法（风控）" in risk
    assert "拼团先做团长" not in risk
    viewer = insights_app.test_client(role="viewer")
    assert viewer.get("/playbooks").status_code == 200
    assert "全部打法" in insights_client.get("/lessons").get_data(as_text=True)
    first = int(re.findall(r'data-playbook="(\d+)"', html)[0])
    assert 'href="/playbooks">← 全部打法' in insights_client.get(f"/playbooks/{first}").get_data(
        as_text=True
    )
    deleted = insights_client.post(f"/playbooks/{first}/delete")
    assert deleted.headers["Location"] == "/playbooks"  # back to the index it was listed on


def test_the_picker_finds_campaigns_by_title(
    insights_app: Flask, insights_client: FlaskClient
) -> None:
    night = _campaign(insights_app, external_id="n1", title="外卖夜宵节：满减叠加会员红包")
    _campaign(insights_app, external_id="s1", title="春季拼团")
    options = insights_client.get("/playbooks/campaign-options?q=夜宵").get_json()
    assert [o["id"] for o in options] == [night]
    assert re.fullmatch(
        rf"外卖夜宵节：满减叠加会员红包（\d{{4}}年\d{{1,2}}月） #{night}", options[0]["label"]
    )
    assert insights_client.get("/playbooks/campaign-options?q=100%_").get_json() == []
    assert insights_app.test_client(role="viewer").get(
        "/playbooks/campaign-options?q=夜宵"
    ).status_code in (302, 403)

    form = insights_client.get("/playbooks/new").get_data(as_text=True)
    assert 'list="campaign-options"' in form
    assert f'#{night}"' in form  # the newest campaigns are offered before anything is typed
    assert "js/campaign_picker.js" in form


def test_a_picked_campaign_is_cited_without_script(
    insights_app: Flask, insights_client: FlaskClient
) -> None:
    night = _campaign(insights_app, external_id="n1", title="外卖夜宵节")
    spring = _campaign(insights_app, external_id="s1", title="春季拼团")
    saved = insights_client.post(
        "/playbooks/new",
        data={
            "title": "夜宵节用会员红包",
            "theme": "reward",
            "body": "做法",
            "supporting_ids": "",
            "supporting_ids_pick": f"外卖夜宵节（2024年10月） #{night}",
            "contradicting_ids": f"春季拼团（2024年10月） #{spring}",
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    page = insights_client.get(saved.headers["Location"]).get_data(as_text=True)
    supports = page.split("支持它的活动", 1)[1].split("反例", 1)[0]
    assert "外卖夜宵节" in supports
    assert "春季拼团" in page.split("反例", 1)[1]

    edit = insights_client.get(saved.headers["Location"] + "/edit").get_data(as_text=True)
    chosen = edit.split('id="supporting_ids-chosen"', 1)[1].split("</ul>", 1)[0]
    assert "外卖夜宵节（" in chosen  # the chosen campaigns are shown by title, removable
    assert f'data-remove="{night}"' in chosen
