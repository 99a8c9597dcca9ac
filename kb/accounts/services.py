"""Accounts and API tokens: roles, password hashing, sign-in checks, token issue and lookup.

Passwords are hashed with argon2id (argon2-cffi's defaults, re-hashed when those change). API tokens
are 256-bit random secrets: only their SHA-256 is stored (a slow hash adds nothing to a secret that
cannot be guessed), so a stolen database does not hand out working tokens.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from kb import audit, vocab
from kb.database import write_transaction
from kb.extensions import db
from kb.models import ApiToken, User, UserSession, utcnow
from kb.validation import InvalidInputError

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
ROLE_LABELS: dict[str, str] = vocab.ROLES  # the one Chinese name of each role (kb/vocab.py)
TOKEN_PREFIX = "kbt_"  # noqa: S105  # a marker, not a secret
# A token's last-used time (and its "token used" audit entry) is written at most this often, so
# a script polling the API does not turn every read into a database write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,80}$")
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified when the username is unknown, so a failed sign-in takes as long either way.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def role_rank(role: str) -> int:
    """Order roles: viewer < editor < admin; an unknown role ranks below all."""
    return ROLES.index(role) if role in ROLES else -1


def generate_password() -> str:
    """Return a random password that a person can still type (about 120 bits)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_username(username: str) -> str:
    username = username.strip()
    if not USERNAME.match(username):
        raise InvalidInputError({"username": "用户名须为 2–80 个字母、数字或 _ . @ -"})
    return username


def _check_role(role: str, field: str = "role") -> Role:
    if role not in ROLES:
        raise InvalidInputError({field: f"角色须为 {' / '.join(ROLE_LABELS.values())} 之一"})
    return role


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError({"password": f"密码至少 {MIN_PASSWORD_LENGTH} 个字符"})
    return password


def create_user(
    username: str, role: str, *, password: str | None = None, display_name: str = ""
) -> tuple[User, str]:
    """Create an account; return it with its password (generated when none is given)."""
    username = _check_username(username)
    _check_role(role)
    password = _check_password(password) if password is not None else generate_password()
    with write_transaction() as session:
        taken = session.scalar(
            sa.select(User.id).where(sa.func.lower(User.username) == username.lower())
        )
        if taken is not None:
            raise InvalidInputError({"username": f"用户名“{username}”已存在"})
        user = User(
            username=username,
            display_name=display_name.strip()[:100],
            role=role,
            password_hash=hash_password(password),
        )
        session.add(user)
        session.flush()
        audit.record("user.create", f"user:{username}", f"角色 {role}")
    return user, password


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def find_user(username: str) -> User | None:
    return db.session.scalar(
        sa.select(User).where(sa.func.lower(User.username) == username.strip().lower())
    )


def list_users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.username)))


def count_users() -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id))) or 0


def authenticate(username: str, password: str) -> User | None:
    """Return the active user with this username and password, or None (and log the attempt)."""
    user = find_user(username) if username else None
    verified = _verifies(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    with write_transaction():
        if not verified or user is None or not user.active:
            reason = "账号已停用" if verified and user is not None else "用户名或密码错误"
            audit.record("login.failure", f"user:{username[:80]}", reason, actor="anonymous")
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.last_login_at = utcnow()
        audit.record("login.success", f"user:{user.username}", actor=f"user:{user.username}")
    return user


def verify_password(user_id: int, password: str) -> bool:
    """Say whether ``password`` is this user's (to confirm a change; not a sign-in)."""
    user = db.session.get(User, user_id)
    return user is not None and _verifies(user.password_hash, password)


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def set_password(user_id: int, password: str | None = None) -> str:
    """Set (or generate) a new password; sessions signed in with the old one end."""
    password = _check_password(password) if password is not None else generate_password()
    with write_transaction():
        user = _require_user(user_id)
        user.password_hash = hash_password(password)
        user.session_epoch += 1
        audit.record("user.password", f"user:{user.username}")
    return password


def update_user(user_id: int, *, role: str | None = None, active: bool | None = None) -> User:
    """Change a user's role or switch the account on/off; the last active admin stays."""
    with write_transaction():
        user = _require_user(user_id)
        new_role = _check_role(role) if role is not None else user.role
        new_active = active if active is not None else user.active
        if user.role == "admin" and user.active and (new_role != "admin" or not new_active):
            others = db.session.scalar(
                sa.select(sa.func.count(User.id)).where(
                    User.role == "admin", User.active.is_(True), User.id != user.id
                )
            )
            if not others:
                raise InvalidInputError({"role": "至少要保留一位启用的管理员"})
        changes = []
        if new_role != user.role:
            changes.append(f"角色 {user.role} → {new_role}")
        if new_active != user.active:
            changes.append("启用" if new_active else "停用")
            user.session_epoch += 1
        user.role, user.active = new_role, new_active
        if changes:
            audit.record("user.update", f"user:{user.username}", "；".join(changes))
    return user


def _require_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidInputError({"user": f"用户 #{user_id} 不存在"})
    return user


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the stored row and the secret, which is shown once and never again."""

    token: ApiToken
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(name: str, role: str) -> IssuedToken:
    """Issue an API token with a role; the secret is returned once and stored only as a hash."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInputError({"name": "令牌名称须为 1–100 个字符"})
    _check_role(role)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction() as session:
        token = ApiToken(
            name=name,
            role=role,
            token_sha256=_digest(secret),
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            created_by=audit.current_actor(),
        )
        session.add(token)
        session.flush()
        audit.record("token.create", f"token:{token.id}:{name}", f"角色 {role}")
    return IssuedToken(token, secret)


def list_tokens() -> list[ApiToken]:
    return list(db.session.scalars(sa.select(ApiToken).order_by(ApiToken.id.desc())))


def revoke_token(token_id: int) -> ApiToken:
    with write_transaction():
        token = db.session.get(ApiToken, token_id)
        if token is None:
            raise InvalidInputError({"token": f"令牌 #{token_id} 不存在"})
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            audit.record("token.revoke", f"token:{token.id}:{token.name}")
    return token


def find_token(secret: str) -> ApiToken | None:
    """Return the live (not revoked) token with this secret, or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token: ApiToken | None = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_sha256 == _digest(secret))
    )
    if token is None or token.revoked_at is not None:
        return None
    return token


def touch_token(token: ApiToken, *, method: str, path: str) -> None:
    """Record that the token was used, at most once per TOKEN_TOUCH_INTERVAL."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < TOKEN_TOUCH_INTERVAL:
        return
    with write_transaction():
        # Conditional update: concurrent requests with one token record one use, not several.
        touched = db.session.execute(
            sa.update(ApiToken)
            .where(ApiToken.id == token.id)
            .where(
                sa.or_(
                    ApiToken.last_used_at.is_(None),
                    ApiToken.last_used_at < now - TOKEN_TOUCH_INTERVAL,
                )
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        if touched.rowcount:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            audit.record("token.use", f"token:{token.id}:{token.name}", f"{method} {path}")
    db.session.refresh(token)


# Sign-in sessions (browser): a random id in the signed cookie, its hash here; see UserSession.
# A session row outlives its use by this long before a later sign-in prunes it.
SESSION_KEEP = timedelta(days=31)


def open_session(user_id: int) -> str:
    """Record a new sign-in of this user; return the id its cookie carries."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    with write_transaction() as session:
        session.execute(sa.delete(UserSession).where(UserSession.created_at < now - SESSION_KEEP))
        session.add(UserSession(user_id=user_id, sid_sha256=_digest(sid), created_at=now))
    return sid


def session_is_open(user_id: int, sid: str) -> bool:
    """Whether ``sid`` is a sign-in of this user that has not been signed out."""
    found = db.session.scalar(
        sa.select(UserSession.id).where(
            UserSession.sid_sha256 == _digest(sid),
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.created_at >= utcnow() - SESSION_KEEP,
        )
    )
    return found is not None


def close_session(sid: str) -> None:
    """Sign this session out on the server: its cookie, or any copy of it, stops working."""
    with write_transaction() as session:
        session.execute(
            sa.update(UserSession)
            .where(UserSession.sid_sha256 == _digest(sid), UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
