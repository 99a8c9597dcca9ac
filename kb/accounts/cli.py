"""Commands for accounts and tokens: ``flask --app kb users ...`` and ``flask --app kb tokens ...``."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from kb.accounts import services as accounts
from kb.models import User
from kb.validation import InvalidInputError

users_group = AppGroup("users", help="Accounts: create, list, change role, reset password.")
tokens_group = AppGroup("tokens", help="API tokens: create (printed once), list, revoke.")

ROLE = click.Choice(accounts.ROLES)
FIRST_ADMIN = "admin"


def _fail(exc: InvalidInputError) -> None:
    raise click.ClickException("；".join(f"{k}: {v}" for k, v in exc.fields.items()))


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=ROLE, default="editor", show_default=True)
@click.option("--display-name", default="", help="Name shown in history and the audit log.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin instead of generating one."
)
def users_create(username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Create an account; a generated password is printed as the last line."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        user, password = accounts.create_user(
            username, role, password=password, display_name=display_name
        )
    except InvalidInputError as exc:
        _fail(exc)
        return
    click.echo(f"已创建用户 {user.username}（{accounts.ROLE_LABELS[user.role]}）")
    if not password_stdin:
        click.echo(password)


@users_group.command("list")
def users_list() -> None:
    """List accounts with role, state and last sign-in."""
    for user in accounts.list_users():
        state = "启用" if user.active else "已停用"
        last = user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "从未"
        click.echo(f"{user.username}\t{user.role}\t{state}\t最近登录 {last}")


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE)
def users_set_role(username: str, role: str) -> None:
    """Change an account's role."""
    user = _user(username)
    try:
        accounts.update_user(user.id, role=role)
    except InvalidInputError as exc:
        _fail(exc)
    click.echo(f"{username} 现在是{accounts.ROLE_LABELS[role]}")


@users_group.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Switch an account off (its sessions end; history keeps its name)."""
    try:
        accounts.update_user(_user(username).id, active=False)
    except InvalidInputError as exc:
        _fail(exc)
    click.echo(f"已停用 {username}")


@users_group.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Switch an account back on."""
    accounts.update_user(_user(username).id, active=True)
    click.echo(f"已启用 {username}")


@users_group.command("reset-password")
@click.argument("username")
def users_reset_password(username: str) -> None:
    """Give an account a new generated password, printed as the last line."""
    password = accounts.set_password(_user(username).id)
    click.echo(f"已为 {username} 重设密码")
    click.echo(password)


@users_group.command("bootstrap")
def users_bootstrap() -> None:
    """Create the first admin when there is no account yet and print its password, once."""
    if accounts.count_users():
        click.echo(
            "已有账号，未创建新管理员（忘记密码：flask --app kb users reset-password 用户名）"
        )
        return
    user, password = accounts.create_user(FIRST_ADMIN, "admin", display_name="管理员")
    rule = "=" * 60
    click.echo(rule)
    click.echo(f"已创建首个管理员账号：{user.username}")
    click.echo(f"密码（只显示这一次，请立即保存并在登录后修改）：{password}")
    click.echo(rule)


def _user(username: str) -> User:
    user = accounts.find_user(username)
    if user is None:
        raise click.ClickException(f"用户 {username} 不存在")
    return user


@tokens_group.command("create")
@click.option("--name", required=True, help="Who uses the token and for what.")
@click.option("--role", type=ROLE, default="viewer", show_default=True)
def tokens_create(name: str, role: str) -> None:
    """Issue an API token; the token is printed as the last line, once."""
    try:
        issued = accounts.create_token(name, role)
    except InvalidInputError as exc:
        _fail(exc)
        return
    click.echo(f"已创建令牌 #{issued.token.id} “{issued.token.name}”（{role}），只显示这一次：")
    click.echo(issued.secret)


@tokens_group.command("list")
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    for token in accounts.list_tokens():
        state = "已吊销" if token.revoked_at else "有效"
        last = token.last_used_at.isoformat(timespec="minutes") if token.last_used_at else "从未"
        click.echo(
            f"#{token.id}\t{token.name}\t{token.role}\t{token.prefix}…\t{state}\t最近使用 {last}"
        )


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its number (see ``tokens list``)."""
    try:
        token = accounts.revoke_token(token_id)
    except InvalidInputError as exc:
        _fail(exc)
        return
    click.echo(f"已吊销令牌 #{token.id} “{token.name}”")
