"""The campaign page answers without its similar-case analysis, which its script loads after it
from /campaigns/<id>/similar (issue 16: the page took 1.5-3.3 s, with no progress shown)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kb.drafts import analysis as drafting
from tests.factories import campaign_payload


def _create(client: FlaskClient, **overrides: object) -> int:
    answer = client.post("/api/v1/campaigns", json=campaign_payload(**overrides))
    assert answer.status_code == 201, answer.get_json()
    return int(answer.get_json()["id"])


def test_the_page_answers_without_the_analysis(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _create(client, external_id="a1", title="双十一沉睡会员召回")

    def not_on_the_page(*args: object, **kwargs: object) -> None:
        raise AssertionError("the page itself must not run the analysis")

    monkeypatch.setattr(drafting, "analyze_draft", not_on_the_page)
    page = client.get(f"/campaigns/{first}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    placeholder = re.search(r'<section class="card similar-loading" id="similar"[^>]*>', html)
    assert placeholder
    assert f'data-similar-url="/campaigns/{first}/similar?fragment=1"' in placeholder[0]
    assert 'aria-busy="true"' in placeholder[0]
    assert "<progress" in html
    assert f'href="/campaigns/{first}/similar"' in html  # without script: a page of its own
    assert '<script src="/static/js/similar.js" defer></script>' in html


def test_the_fragment_and_the_page_hold_the_analysis(app: Flask, client: FlaskClient) -> None:
    first = _create(client, external_id="a1", title="双十一沉睡会员召回")
    second = _create(client, external_id="a2", title="双十二沉睡会员唤醒",
                     start_date="2024-12-01", end_date="2024-12-12")  # fmt: skip
    fragment = client.get(f"/campaigns/{first}/similar?fragment=1")
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert '<section class="analysis" id="similar"' in text
    assert "<html" not in text  # a fragment, put in place by the page's script
    assert f'href="/campaigns/{second}"' in text
    assert f'href="/campaigns/{first}"' not in text  # never itself

    page = client.get(f"/campaigns/{first}/similar").get_data(as_text=True)
    assert "<html" in page
    assert "<h1>相似案例与冲突</h1>" in page
    assert f'href="/campaigns/{second}"' in page

    viewer = app.test_client(role="viewer")
    assert viewer.get(f"/campaigns/{first}/similar?fragment=1").status_code == 200
    assert client.delete(f"/api/v1/campaigns/{first}").status_code == 204
    assert client.get(f"/campaigns/{first}/similar?fragment=1").status_code == 404
    assert client.get("/campaigns/99999/similar").status_code == 404
