"""The outbox wake-up: services call notify(); the indexer registers what it does."""

from __future__ import annotations

from flask import Flask

from kb import outbox


def test_notify_calls_what_was_registered() -> None:
    app = Flask(__name__)
    calls: list[str] = []
    outbox.on_notify(app, lambda: calls.append("woken"))
    with app.app_context():
        outbox.notify()
        outbox.notify()
    assert calls == ["woken", "woken"]


def test_notify_without_an_indexer_does_nothing() -> None:
    app = Flask(__name__)
    with app.app_context():
        outbox.notify()  # no indexer registered (a script's bare app): the write still stands


def test_the_app_registers_its_indexer(app: Flask) -> None:
    from kb.searching import indexer

    assert app.extensions["kb.outbox_wake"] is indexer.notify
