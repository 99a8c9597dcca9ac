"""The metric facts an outcome query judges campaigns by, kept per campaign version.

An outcome query ("留存提升明显的会员活动") judges every campaign it fused (≈ 200 at 10k
campaigns) by its metrics. Loading them through the ORM on every query was half of such a query
in keyword mode (≈ 20 of 30-37 ms at 10k on an idle AVX-512 box, profiled, bench/results/
latency_session10.txt) and the tail of the keyword p95. A campaign's facts change only with the
campaign itself: every edit, child rows included, bumps its ``version`` and touches its
``updated_at`` (kb/campaigns/services.py ``_apply``). So each process keeps the facts it computed
under the campaign's (version, updated_at), and a query reads just those two columns of the
campaigns it judges; a campaign whose stamp moved is loaded again. The timestamp is in the key
too: a restored backup can bring back a version number with other contents.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import load_only, selectinload

from kb.extensions import db
from kb.models import Campaign
from kb.searching.documents import metric_facts
from search.documents import MetricFact

# Campaigns whose facts one process keeps (a few hundred bytes each): an outcome query judges
# ≈ 200, so this holds the campaigns of a hundred different queries.
CACHED_CAMPAIGNS = 20_000

_Stamp = tuple[int, datetime]


class FactsCache:
    """The metric facts of completed campaigns, least recently used dropped beyond ``size``."""

    def __init__(self, size: int = CACHED_CAMPAIGNS) -> None:
        self._size = size
        self._entries: OrderedDict[int, tuple[_Stamp, tuple[MetricFact, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def facts(self, ids: Sequence[int]) -> dict[int, tuple[MetricFact, ...]]:
        """Return the metric facts of the live completed campaigns among ``ids`` that have metrics."""
        if not ids:
            return {}
        stamps = {
            campaign_id: (version, updated_at)
            for campaign_id, version, updated_at in db.session.execute(
                sa.select(Campaign.id, Campaign.version, Campaign.updated_at).where(*_judged(ids))
            )
        }
        found: dict[int, tuple[MetricFact, ...]] = {}
        with self._lock:
            for campaign_id, stamp in stamps.items():
                entry = self._entries.get(campaign_id)
                if entry is not None and entry[0] == stamp:
                    self._entries.move_to_end(campaign_id)
                    found[campaign_id] = entry[1]
        missing = [campaign_id for campaign_id in stamps if campaign_id not in found]
        if missing:
            loaded = _load(missing)
            with self._lock:
                for campaign_id, (stamp, facts) in loaded.items():
                    self._entries[campaign_id] = (stamp, facts)
                    self._entries.move_to_end(campaign_id)
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
            found.update((campaign_id, facts) for campaign_id, (_, facts) in loaded.items())
        return {campaign_id: facts for campaign_id, facts in found.items() if facts}


def _judged(ids: Sequence[int]) -> tuple[sa.ColumnElement[bool], ...]:
    """Select the live completed campaigns among ``ids``.

    Only finished campaigns have outcomes: a running one is not "missing" its target.
    """
    return (Campaign.id.in_(ids), Campaign.status == "completed", Campaign.deleted_at.is_(None))


def _load(ids: list[int]) -> dict[int, tuple[_Stamp, tuple[MetricFact, ...]]]:
    """Load the campaigns' metrics and compute their facts, each under the stamp it was read at.

    A metric's assessment names its campaign's key metric, which depends on the campaign's goal
    and all its metrics: two queries in all (the campaigns, then their metrics; ``metric.campaign``
    is then found in the session, not queried), the key metric chosen once per campaign.
    """
    campaigns = db.session.scalars(
        sa.select(Campaign)
        .where(*_judged(ids))
        .options(
            load_only(
                Campaign.id,
                Campaign.goal_type,
                Campaign.status,
                Campaign.version,
                Campaign.updated_at,
            ),
            selectinload(Campaign.metrics),
        )
    ).all()
    return {
        campaign.id: ((campaign.version, campaign.updated_at), metric_facts(campaign))
        for campaign in campaigns
    }
