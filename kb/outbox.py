"""Wake whoever indexes the outbox after a write commits.

Services (campaigns, imports) call ``notify()`` after a commit; the search feature registers
how it is woken (``indexer.init_app``). Platform-level so that kb.campaigns need not import
kb.searching, which sits above it.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app

_WAKE = "kb.outbox_wake"


def on_notify(app: Flask, wake: Callable[[], None]) -> None:
    """Register what ``notify()`` calls in ``app`` (the indexer: drain now, or wake its thread)."""
    app.extensions[_WAKE] = wake


def notify() -> None:
    """Tell the indexer that the outbox has news (after a commit); nothing if none registered."""
    from kb.database import in_batch

    if in_batch():
        return  # not committed yet: the batch notifies once after its commit
    wake: Callable[[], None] | None = current_app.extensions.get(_WAKE)
    if wake is not None:
        wake()
