"""Test accounts: one user and one API token per role, and test clients signed in as them.

Every app made by ``tests.conftest.make_app`` hands out :class:`SignedInClient`: by default signed
in as an admin (session for pages, bearer token for the API), ``role="viewer"``/``"editor"`` for
the others and ``role=None`` for an anonymous visitor.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from kb.access import SESSION_ID_KEY
from kb.accounts import services as accounts
from kb.extensions import db
from kb.models import User

PASSWORD = "test-password-123"  # noqa: S105  # the test accounts' password
ROLES = ("viewer", "editor", "admin")


@functools.cache
def password_hash() -> str:
    # argon2 is slow on purpose: hash once per test session, not once per account.
    return accounts.hash_password(PASSWORD)


@dataclass(frozen=True)
class Account:
    username: str
    user_id: int
    token: str


def ensure_account(app: Flask, role: str) -> Account:
    """Return the test account of this role in the app's database, creating it the first time."""
    cache: dict[str, Account] = app.extensions.setdefault("tests.signed_in", {})
    username = f"test-{role}"
    with app.app_context():
        if role in cache and accounts.find_token(cache[role].token) is not None:
            return cache[role]  # still there (a restore from a backup replaces the database)
        user = accounts.find_user(username)
        if user is None:
            user = User(username=username, role=role, password_hash=password_hash())
            db.session.add(user)
            db.session.commit()
        token = accounts.create_token(f"test-{role}", role).secret
        cache[role] = Account(username, user.id, token)
    return cache[role]


class SignedInClient(FlaskClient):
    """A test client signed in with a role's session and bearer token (``role=None``: nobody)."""

    def __init__(self, *args: Any, role: str | None = "admin", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.role = role
        if role is None:
            return
        account = ensure_account(self.application, role)
        with self.application.app_context():
            sid = accounts.open_session(account.user_id)
        with self.session_transaction() as session:
            session["_user_id"] = f"{account.user_id}:0"
            session["_fresh"] = True
            session[SESSION_ID_KEY] = sid
        # Pages ignore the header; the API takes it (writes need a token, not a session).
        self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {account.token}"
