"""A record's size is bounded as a whole, with a Chinese message on the field that tips it over."""

from __future__ import annotations

import pytest

from kb.campaigns.schemas import MARKDOWN_MAX, RECORD_MAX_CHARS, validate_campaign
from kb.validation import InvalidInputError
from tests.factories import campaign_payload


def test_a_record_of_full_fields_past_the_total_is_refused() -> None:
    documents = [
        {"title": f"附件 {i}", "kind": "other", "body": "字" * MARKDOWN_MAX} for i in range(12)
    ]
    with pytest.raises(InvalidInputError) as raised:
        validate_campaign(campaign_payload(documents=documents))
    assert set(raised.value.fields) == {"documents"}
    assert "超过上限 100 万字" in raised.value.fields["documents"]


def test_a_large_record_within_the_total_is_kept() -> None:
    body = "字" * (MARKDOWN_MAX - 1)
    documents = [{"title": "方案", "kind": "strategy", "body": body} for _ in range(5)]
    data = validate_campaign(campaign_payload(summary=body, lessons=body, documents=documents))
    assert sum(len(d.body) for d in data.documents) + len(data.summary) < RECORD_MAX_CHARS
