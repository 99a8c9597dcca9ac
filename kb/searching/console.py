"""Index the change log with a terminal progress bar: for the commands of any feature.

Its own module (not a ``cli``) so that a feature's command may use it without importing
another feature's command module, and kb/cli.py (which registers them all) stays the top.
"""

from __future__ import annotations

import click
import sqlalchemy as sa

from kb.extensions import db
from kb.models import IndexOutbox
from kb.searching import feed, indexer


def drain_with_progress() -> None:
    """Index what the change feed holds beyond this host's mark, with a progress bar."""
    pending = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(IndexOutbox.campaign_id))).where(
            IndexOutbox.id > feed.keyword_seq()
        )
    )
    db.session.commit()
    if not pending:
        return
    with click.progressbar(length=pending, label="建立搜索索引") as bar:
        indexer.drain(progress=bar.update)
