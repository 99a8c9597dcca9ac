"""Which campaigns an export holds, read from the database in batches, handed to ingest/writers.py.

The file formats themselves (CSV, Excel, JSON Lines, Markdown) are written from plain dicts in
ingest/writers.py; this module loads the campaigns and turns each into the dict it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ingest import writers
from ingest.writers import EXPORT_FORMATS as EXPORT_FORMATS
from ingest.writers import MIMETYPES as MIMETYPES
from kb.campaigns.key_metric import key_metric
from kb.campaigns.queries import CampaignFilter, list_campaigns
from kb.campaigns.serialize import campaign_to_dict, campaign_to_input
from kb.extensions import db
from kb.models import Campaign
from kb.searching.schemas import SearchQuery

BATCH = 200
SEARCH_PAGE = 100
SEARCH_MAX_OFFSET = 10_000


# ---- which campaigns -------------------------------------------------------------------------


def iter_campaigns(filters: CampaignFilter) -> Iterator[Campaign]:
    """Yield every campaign of a filtered list, a batch at a time with its child rows loaded."""
    page = 1
    while True:
        result = list_campaigns(filters, page=page, per_page=BATCH)
        _load_children([c.id for c in result.items])
        yield from result.items
        if page >= result.pages:
            return
        db.session.expunge_all()  # bounded memory over a long export
        page += 1


def iter_search(query: SearchQuery) -> Iterator[Campaign]:
    """Yield the campaigns of a search result in rank order, every page of it."""
    from kb.searching.service import search  # the search stack loads only when a search is exported

    offset = 0
    while offset <= SEARCH_MAX_OFFSET:
        response = search(query.model_copy(update={"limit": SEARCH_PAGE, "offset": offset}))
        campaigns = [result.campaign for result in response.results]
        _load_children([c.id for c in campaigns])
        yield from campaigns
        offset += SEARCH_PAGE
        if not response.results or offset >= response.total:
            return


def _load_children(ids: list[int]) -> None:
    if ids:
        db.session.scalars(
            sa.select(Campaign)
            .where(Campaign.id.in_(ids))
            .options(
                selectinload(Campaign.rewards),
                selectinload(Campaign.metrics),
                selectinload(Campaign.hypotheses),
                selectinload(Campaign.documents),
            )
        ).all()


# ---- in which format -------------------------------------------------------------------------


def export_record(campaign: Campaign) -> dict[str, Any]:
    """Return what the writers write of a campaign: its input shape and its key metric's result."""
    record = campaign_to_input(campaign)
    key = key_metric(campaign)
    record["key_metric"] = (
        {
            "name": key.name,
            "attainment_pct": None if key.attainment_pct is None else round(key.attainment_pct, 1),
            "verdict": key.verdict,
        }
        if key is not None
        else None
    )
    return record


def csv_chunks(campaigns: Iterable[Campaign]) -> Iterator[str]:
    """Yield a CSV export of the campaigns (see ingest.writers.csv_chunks)."""
    return writers.csv_chunks(export_record(c) for c in campaigns)


def jsonl_chunks(campaigns: Iterable[Campaign]) -> Iterator[str]:
    """Yield a JSON Lines export: one campaign a line, in the API's shape."""
    return writers.jsonl_chunks(campaign_to_dict(c) for c in campaigns)


def write_xlsx(campaigns: Iterable[Campaign], target: IO[bytes]) -> None:
    """Write an Excel export of the campaigns (see ingest.writers.write_xlsx)."""
    writers.write_xlsx((export_record(c) for c in campaigns), target)


def campaign_markdown(campaign: Campaign) -> str:
    """Return one campaign as Markdown (see ingest.writers.campaign_markdown)."""
    return writers.campaign_markdown(export_record(campaign))
