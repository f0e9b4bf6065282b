"""`huifang users …`: create accounts; create, list and revoke API tokens.

The first admin of a deployment is created here (nobody can log in to create them). A
password comes from an interactive prompt, or from the first line of standard input with
`--password-stdin` (for scripts: never on the command line, where `ps` would show it).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from sqlmodel import col

from huifang.settings import Settings

app = typer.Typer(help="User accounts and API tokens.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@app.command("create")
def create(
    username: str = typer.Argument(..., help="login name"),
    role: str = typer.Option(
        ..., "--role", help="admin, agent, supervisor, inspector or integration"
    ),
    unit: str = typer.Option("", "--unit", help="unit code (or id); required for a supervisor"),
    display_name: str = typer.Option("", "--name", help="name shown in the console"),
    phone: str = typer.Option(
        "", "--phone", help="an agent's own phone, rung first on click-to-call"
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from the first line of stdin"
    ),
    no_password: bool = typer.Option(
        False, "--no-password", help="token-only account (integrations): no console login"
    ),
) -> None:
    """Create an account."""
    from sqlalchemy import select

    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.models import Unit
    from huifang.domain.users import Role, create_user
    from huifang.errors import HuifangError
    from huifang.phones import normalize_phone

    try:
        chosen_role = Role(role)
    except ValueError:
        raise _fail(f"--role: {role!r} is not one of {', '.join(Role)}") from None
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    settings = Settings()
    runtime = build_runtime(settings)
    try:
        with session_scope(runtime.engine) as session:
            unit_id: int | None = None
            if unit:
                match = session.execute(
                    select(col(Unit.id)).where(
                        (col(Unit.code) == unit) | (col(Unit.id) == _as_int(unit))
                    )
                ).first()
                if match is None:
                    raise _fail(f"--unit: no unit with code or id {unit!r}")
                unit_id = match[0]
            user = create_user(
                session,
                username=username,
                role=chosen_role,
                password=password,
                unit_id=unit_id,
                display_name=display_name,
                phone=normalize_phone(phone, settings.phone_region) if phone else "",
                now=runtime.clock.now(),
            )
            typer.echo(f"created {chosen_role} {user.username} (id {user.id})")
    except (HuifangError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        runtime.close()


tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


def _user_named(session: Any, username: str) -> Any:
    from sqlalchemy import select

    from huifang.domain.models import User

    user = session.execute(select(User).where(col(User.username) == username)).scalars().first()
    if user is None:
        raise _fail(f"no user {username!r}")
    return user


@tokens_app.command("create")
def token_create(
    username: str = typer.Argument(..., help="the account the token acts as"),
    name: str = typer.Option(..., "--name", help="what the token is for, e.g. 'cad-import'"),
    days: int = typer.Option(90, "--days", min=1, max=365, help="days until it expires"),
) -> None:
    """Create an API token and print it (shown once; only its hash is kept)."""
    from datetime import timedelta

    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.api_tokens import issue_api_token
    from huifang.errors import HuifangError

    runtime = build_runtime(Settings())
    try:
        with session_scope(runtime.engine) as session:
            issued = issue_api_token(
                session, _user_named(session, username), name, runtime.clock.now(),
                lifetime=timedelta(days=days),
            )  # fmt: skip
            typer.echo(issued.token)
            typer.echo(
                f"token {issued.row.id} for {username}, expires {issued.row.expires_at:%Y-%m-%d}",
                err=True,
            )
    except (HuifangError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        runtime.close()


@tokens_app.command("list")
def token_list(
    username: str = typer.Argument("", help="one account's tokens (default: everyone's)"),
) -> None:
    """List API tokens: id, owner, name, state, created, expires, last used."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.api_tokens import list_api_tokens, token_state
    from huifang.domain.models import User

    runtime = build_runtime(Settings())
    now = runtime.clock.now()
    try:
        with session_scope(runtime.engine) as session:
            owner_id = _user_named(session, username).id if username else None
            for row in list_api_tokens(session, actor=None, owner_id=owner_id):
                owner = session.get(User, row.user_id)
                used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                typer.echo(
                    f"{row.id}\t{owner.username if owner else row.user_id}\t{row.name}\t"
                    f"{token_state(row, now)}\tcreated {row.created_at:%Y-%m-%d}\t"
                    f"expires {row.expires_at:%Y-%m-%d}\tused {used}"
                )
    finally:
        runtime.close()


@tokens_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="the id `tokens list` shows")) -> None:
    """Revoke an API token at once."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.domain.api_tokens import revoke_api_token
    from huifang.errors import HuifangError

    runtime = build_runtime(Settings())
    try:
        with session_scope(runtime.engine) as session:
            row = revoke_api_token(session, token_id, actor=None, now=runtime.clock.now())
            typer.echo(f"token {row.id} ({row.name}) is revoked")
    except HuifangError as exc:
        raise _fail(str(exc)) from None
    finally:
        runtime.close()


def _as_int(text: str) -> int:
    return int(text) if text.isdigit() else -1
