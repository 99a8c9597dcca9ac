"""A listing ordered by a metric's value: what a query that is only a condition shows."""

from __future__ import annotations

from pathlib import Path

from search.keyword import KeywordIndex, MetricRange, SearchFilters
from tests.search.test_keyword import campaign, metric

ROI = MetricRange(key="roi", field="actual")


def test_a_listing_orders_by_a_metric_with_the_campaigns_without_it_last(tmp_path: Path) -> None:
    docs = [
        campaign(1, "甲", metrics=(metric("ROI", "roi", 3.0),)),
        campaign(2, "乙", metrics=(metric("ROI", "roi", 1.0),)),
        campaign(3, "丙"),  # no ROI
        campaign(4, "丁", metrics=(metric("ROI", "roi", 2.0),)),
        campaign(5, "戊", metrics=(metric("ROI", "roi", 2.0),)),  # a tie: latest id first
    ]
    with KeywordIndex(tmp_path / "kw") as ix:
        ix.rebuild(docs)

        def listed(descending: bool, offset: int = 0, limit: int = 10) -> list[int]:
            found = ix.search(
                "", filters=SearchFilters(), limit=limit, offset=offset, order=(ROI, descending)
            )
            assert found.total == len(docs)
            return [hit.campaign_id for hit in found.hits]

        assert listed(descending=True) == [1, 5, 4, 2, 3]
        assert listed(descending=False) == [2, 5, 4, 1, 3]
        assert listed(descending=True, offset=1, limit=2) == [5, 4]  # pages cut the same order
        within = SearchFilters(metrics=(MetricRange("roi", "actual", low=2.0),))
        found = ix.search("", filters=within, limit=10, order=(ROI, True))
        assert [hit.campaign_id for hit in found.hits] == [1, 5, 4]
        # Without an order the listing stays newest first (all start the same day: highest id).
        plain = ix.search("", filters=SearchFilters(), limit=10)
        assert [hit.campaign_id for hit in plain.hits] == [5, 4, 3, 2, 1]
